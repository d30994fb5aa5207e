// swift-tools-version: 6.1
// UnclogNIO: per-handler attribution for SwiftNIO programs recorded by `unclog record`.
// A separate package so unclog itself does not depend on SwiftNIO.
import PackageDescription

let package = Package(
    name: "UnclogNIO",
    products: [.library(name: "UnclogNIO", targets: ["UnclogNIO"])],
    dependencies: [.package(url: "https://github.com/apple/swift-nio", from: "2.101.0")],
    targets: [
        .target(name: "UnclogNIO", dependencies: [.product(name: "NIOCore", package: "swift-nio")])
    ]
)
