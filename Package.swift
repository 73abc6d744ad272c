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
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
    ],
    targets: [
        // C libraries, found through pkg-config; apt names the package that provides them.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // Float32 tensors, BLAS kernels and reverse-mode autograd.
        .target(name: "Tensors", dependencies: ["CBLAS"], swiftSettings: optimized),
        // Layers with parameters, initialisation, SGD with parameter groups, schedules.
        .target(name: "NN", dependencies: ["Tensors"], swiftSettings: optimized),
        // Datasets and seeded augmentations.
        .target(name: "Data", dependencies: ["Tensors", "CZlib"], swiftSettings: optimized),
        // SimSiam and its variants, training loop.
        .target(name: "SSL", dependencies: ["NN", "Data"], swiftSettings: optimized),
        // Runs, params and metrics in SQLite (mlflow shape), migrations by name. Plain data only:
        // the typed config, records and metric names live above it (SSL, Scheduler).
        .target(name: "Store", dependencies: ["CSQLite"], swiftSettings: optimized),
        // Markdown tables (paper vs measured, claim verdicts) and CSV/JSON export from the Store.
        .target(name: "Report", dependencies: ["Store", "SSL", "Registry"], swiftSettings: optimized),
        // Experiment files (one YAML file per paper table) parsed into typed, validated tables.
        .target(name: "Registry", dependencies: ["SSL", "Yams"], swiftSettings: optimized),

        // Runs rows × seeds as worker processes behind a small back-end protocol.
        .target(name: "Scheduler", dependencies: ["SSL", "Store", "Registry"], swiftSettings: optimized),

        .executableTarget(
            name: "ablate",
            dependencies: ["SSL", "Scheduler", "Store", "Registry", "Report", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: optimized
        ),

        // The one approximate-equality helper shared by the test targets.
        .target(name: "TestSupport", dependencies: ["Tensors"], path: "Tests/TestSupport", swiftSettings: optimized),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "NN", "TestSupport"], swiftSettings: optimized),
        .testTarget(name: "DataTests", dependencies: ["Data", "CZlib"], swiftSettings: optimized),
        .testTarget(name: "SSLTests", dependencies: ["SSL", "Data"], swiftSettings: optimized),
        .testTarget(name: "CLITests", dependencies: ["ablate", "CSQLite"], exclude: ["Golden"], swiftSettings: optimized),
        .testTarget(name: "SchedulerTests", dependencies: ["Scheduler", "SSL", "Registry"], swiftSettings: optimized),
        .testTarget(name: "RegistryTests", dependencies: ["Registry", "SSL", "Data"], swiftSettings: optimized),
        .testTarget(name: "StoreTests", dependencies: ["Store", "Report", "Registry", "SSL", "Scheduler"], exclude: ["Golden"], swiftSettings: optimized),
        .testTarget(name: "NNTests", dependencies: ["NN", "SSL", "TestSupport"], resources: [.copy("Fixtures")], swiftSettings: optimized),
    ],
    swiftLanguageModes: [.v5]
)
