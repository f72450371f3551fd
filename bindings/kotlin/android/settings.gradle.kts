// The Android library module of libbert's Kotlin binding (JNI). See README.md: the native
// libraries (jniLibs/<abi>/libbert.so) are built by scripts/build_mobile.sh with an NDK.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "libbert-android"
include(":libbert")
