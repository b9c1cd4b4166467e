// swift-tools-version: 6.1
// steertool: weight updates and activation steering as two views of one thing.
// Module order (imports go down this list, never up):
//   COpenBLAS, CLAPACKE, CZlib, CKernels → Tensors → Formats → Merge → Runtime → Equivalence → steertool
// Merge is tensor arithmetic on files and knows no model execution: it imports Tensors, Formats
// and CKernels (its LoRA kernel) only; Runtime and Equivalence do not import Merge either.
import PackageDescription

/// Optimisation flags for the numeric modules: exclusivity checks cost measurable time in the
/// inner loops of dequantization and attention and protect nothing there (buffers are local).
let numericSettings: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "steertool",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "steertool", targets: ["steertool"]),
        .library(name: "Tensors", targets: ["Tensors"]),
        .library(name: "Formats", targets: ["Formats"]),
        .library(name: "Merge", targets: ["Merge"]),
        .library(name: "Runtime", targets: ["Runtime"]),
        .library(name: "Equivalence", targets: ["Equivalence"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CLAPACKE", pkgConfig: "lapacke",
            providers: [.apt(["liblapacke-dev"])]),
        .systemLibrary(
            name: "CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]),

        .target(
            name: "Tensors", dependencies: ["COpenBLAS", "CLAPACKE"],
            swiftSettings: numericSettings),
        .target(
            name: "Formats",
            dependencies: [
                "Tensors", "CZlib",
                .product(name: "OrderedCollections", package: "swift-collections"),
            ],
            swiftSettings: numericSettings),
        // Hand-vectorised C kernels with runtime CPU dispatch (LoRA merge, Q8_0, attention, gemm, ...).
        .target(name: "CKernels"),
        .target(
            name: "Merge",
            dependencies: [
                "Tensors", "Formats", "CKernels",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: numericSettings),
        .target(
            name: "Runtime", dependencies: ["Tensors", "Formats", "CKernels"],
            swiftSettings: numericSettings),
        .target(
            name: "Equivalence", dependencies: ["Tensors", "Formats", "Runtime"],
            swiftSettings: numericSettings),
        .executableTarget(
            name: "steertool",
            dependencies: [
                "Tensors", "Formats", "Merge", "Runtime", "Equivalence",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // Fuzz driver for the Formats parsers (`make fuzz`; a plain build replays inputs).
        .executableTarget(name: "FormatsFuzz", dependencies: ["Formats"], path: "Fuzz/FormatsFuzz"),

        .target(name: "TestSupport", dependencies: ["Tensors", "Runtime"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TestSupport"]),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "TestSupport"]),
        // MergeTests also run merged checkpoints through Runtime (a test-only arrow: the merge's
        // consumers are its check) and force the LoRA kernel's paths through CKernels.
        .testTarget(name: "MergeTests", dependencies: ["Merge", "Formats", "Runtime", "CKernels", "TestSupport"]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "Formats", "TestSupport"]),
        .testTarget(
            name: "EquivalenceTests", dependencies: ["Equivalence", "Runtime", "Formats", "TestSupport"]),
    ]
)
