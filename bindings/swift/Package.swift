// swift-tools-version:5.7
// libbert Swift bindings: a system library module (CBert) over include/bert.h and the
// libbert shared library (found with pkg-config `bert`, see scripts/build_lib.sh), plus
// final classes (Bert) that free their handles in deinit.
import PackageDescription

let package = Package(
    name: "Bert",
    products: [.library(name: "Bert", targets: ["Bert"])],
    targets: [
        .systemLibrary(name: "CBert", path: "Sources/CBert", pkgConfig: "bert"),
        .target(name: "Bert", dependencies: ["CBert"], path: "Sources/Bert"),
        .testTarget(name: "BertTests", dependencies: ["Bert"], path: "Tests/BertTests"),
    ]
)
