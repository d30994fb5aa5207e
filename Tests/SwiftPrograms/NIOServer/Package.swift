// swift-tools-version: 6.1
// A SwiftNIO server whose handler blocks the event loop, for unclog's recorder tests (built in
// debug by the test, about 40 s; UNCLOG_SKIP_NIO=1 skips it). Uses Integrations/UnclogNIO.
import PackageDescription

let package = Package(
    name: "NIOServer",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(path: "../../../Integrations/UnclogNIO"),
    ],
    targets: [
        .executableTarget(
            name: "NIOServer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "UnclogNIO", package: "UnclogNIO"),
            ])
    ]
)
