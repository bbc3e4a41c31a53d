// swift-tools-version: 6.2
import PackageDescription

let package = Package(
    name: "understudy",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "understudy", targets: ["understudy"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        // FullFoundation only: the default ConfigurationSupport trait pulls swift-configuration (~1 min of build).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: ["FullFoundation"]),
        // Already in the graph through HummingbirdTLS; named for the TLS configuration types.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // GET /metrics: swift-prometheus's registry (built on swift-metrics' CoreMetrics, which
        // Hummingbird already brings in) renders the text format with HELP lines.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // Config schema, validation, defaults, status vocabulary, script-variable contract.
        .target(
            name: "UnderstudyModel",
            dependencies: [.product(name: "Yams", package: "Yams")]
        ),
        // The pure decision core: events in, actions out. No I/O, no clock.
        .target(
            name: "UnderstudyEngine",
            dependencies: ["UnderstudyModel"],
            // Optimized even in debug builds: the simulator runs 1,000 schedules per test run.
            swiftSettings: [.unsafeFlags(["-O"])]
        ),
        // Deterministic world that drives Engines through seeded fault schedules.
        .target(
            name: "UnderstudySimulator",
            dependencies: ["UnderstudyEngine", "UnderstudyModel"],
            swiftSettings: [.unsafeFlags(["-O"])]
        ),
        // The daemon's I/O shell: transports, scripts, storage, drivers.
        .target(
            name: "UnderstudyNode",
            dependencies: [
                "UnderstudyEngine",
                "UnderstudyModel",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ]
        ),
        // The management plane: REST API /api/v1, sessions, users, live events (ARCHITECTURE.md §2).
        .target(
            name: "UnderstudyWeb",
            dependencies: [
                "UnderstudyNode",
                "UnderstudyModel",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // The WebManager's page, compiled into the binary: nothing to install beside it.
            resources: [.embedInCode("Assets/index.html"), .embedInCode("Assets/app.js"), .embedInCode("Assets/app.css")]
        ),
        // The network-namespace lab (tests, benchmarks, `understudy lab`): needs root.
        .target(name: "UnderstudyLab", dependencies: ["UnderstudyNode", "UnderstudyModel", "UnderstudyEngine"]),
        // What only tests use: prerequisites (skip, or fail under UNDERSTUDY_REQUIRE_ALL=1),
        // free ports, a real NUT server.
        .target(name: "UnderstudyTestSupport", dependencies: ["UnderstudyNode"]),
        .executableTarget(
            name: "understudy",
            dependencies: [
                "UnderstudyLab",
                "UnderstudyModel",
                "UnderstudyEngine",
                "UnderstudySimulator",
                "UnderstudyNode",
                "UnderstudyWeb",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "UnderstudyModelTests", dependencies: ["UnderstudyModel"]),
        .testTarget(
            name: "UnderstudyEngineTests",
            dependencies: ["UnderstudyEngine", "UnderstudyModel", "UnderstudySimulator", .product(name: "Yams", package: "Yams")],
            // Scenario files, read by ScenarioFiles.swift from the source tree.
            exclude: ["Scenarios"]),
        .testTarget(name: "UnderstudySimulatorTests", dependencies: ["UnderstudySimulator"]),
        .testTarget(
            name: "UnderstudyWebTests",
            dependencies: ["UnderstudyWeb", "UnderstudyModel", "UnderstudyNode", "UnderstudyEngine", "UnderstudySimulator"]),
        .testTarget(name: "UnderstudyNodeTests", dependencies: ["UnderstudyNode", "UnderstudyTestSupport"]),
        .testTarget(
            name: "UnderstudyProcessTests",
            dependencies: ["UnderstudyNode", "UnderstudyEngine", "UnderstudyModel", "UnderstudyTestSupport", "UnderstudyWeb"]),
        .testTarget(
            name: "UnderstudyLabTests", dependencies: ["UnderstudyLab", "UnderstudyEngine", "UnderstudyModel", "UnderstudyTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
