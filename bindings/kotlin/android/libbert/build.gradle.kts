// libbert as an Android library (AAR): the Kotlin classes of src/main/kotlin (package
// libbert.jni) and libbert.so for each ABI from src/main/jniLibs/<abi>/, which
// scripts/build_mobile.sh writes (see ../README.md).
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "libbert.jni"
    compileSdk = 34
    defaultConfig {
        minSdk = 24
        // The ABIs scripts/build_mobile.sh builds: aarch64-linux-android, armv7-linux-androideabi.
        ndk { abiFilters += listOf("arm64-v8a", "armeabi-v7a") }
        consumerProguardFiles("consumer-rules.pro")
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
    // The .so files are already stripped by scripts/build_mobile.sh.
    packaging { jniLibs { keepDebugSymbols += "**/libbert.so" } }
}
