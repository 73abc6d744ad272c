// swift-tools-version:6.0
import PackageDescription

// NOTE: numeric targets are optimized even in debug builds; without -O the float loops
// run 20-50x slower and `make test` would take far too long.
let optimized: [SwiftSetting] = [
    .unsafeFlags(["-O", "-enforce-exclusivity=unchecked"], .when(configuration: .debug)),
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "ablate",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "ablate", targets: ["ablate"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
    ],
    targets: [
        // C libraries, found through pkg-config; apt names the package that provides them.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),

        // Float32 tensors, BLAS kernels and reverse-mode autograd.
        .target(name: "Tensors", dependencies: ["CBLAS"], swiftSettings: optimized),
        // Layers with parameters, initialisation, SGD with parameter groups, schedules.
        .target(name: "NN", dependencies: ["Tensors"], swiftSettings: optimized),
        // Datasets and seeded augmentations.
        .target(name: "Data", dependencies: ["Tensors"], swiftSettings: optimized),
        // SimSiam and its variants, training loop.
        .target(name: "SSL", dependencies: ["NN", "Data"], swiftSettings: optimized),

        .executableTarget(
            name: "ablate",
            dependencies: ["SSL", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: optimized
        ),

        .testTarget(name: "TensorsTests", dependencies: ["Tensors"], swiftSettings: optimized),
        .testTarget(name: "NNTests", dependencies: ["NN", "SSL"], resources: [.copy("Fixtures")], swiftSettings: optimized),
    ],
    swiftLanguageModes: [.v5]
)
