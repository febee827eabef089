// swift-tools-version:6.0
import PackageDescription

// Layers follow ../shared/ARCHITECTURE.md: cores (Raft, ...) import nothing but the
// standard library; shells and foundations wrap the system C libraries.
let package = Package(
    name: "Shoal",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "shoal", targets: ["Shoal"]),
        .executable(name: "shoal-sim", targets: ["ShoalSim"]),
        .executable(name: "shoal-bench", targets: ["ShoalBench"]),
        // Installed beside `shoal`: the per-container monitor (C; see Sources/ShoalMonitor/main.c).
        .executable(name: "shoal-monitor", targets: ["ShoalMonitor"]),
        .executable(name: "shoal-test-udp-echo", targets: ["ShoalTestUDPEcho"]),
    ],
    targets: [
        // C boundaries
        .systemLibrary(
            name: "CSQLite",
            path: "Sources/CSQLite",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            path: "Sources/COpenSSL",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "CContainer", path: "Sources/CContainer"),
        // Static: SwiftPM links every executable with the Swift runtime, which this C program never calls;
        // loading libswiftCore.so would add ~8 ms to every container start (static: ~1 ms, as /bin/true).
        // Its own _start, no C library start-up (see Sources/ShoalMonitor/freestanding.h).
        .executableTarget(name: "ShoalMonitor", dependencies: ["CContainer"], path: "Sources/ShoalMonitor",
                          cSettings: [.unsafeFlags(["-fno-stack-protector", "-fno-builtin"])],
                          linkerSettings: [.unsafeFlags(["-static-executable", "-Xclang-linker", "-nostartfiles", "-Xlinker", "--gc-sections"])]),
        // Tests only: a static UDP echo server to run inside busybox containers (published UDP ports).
        .executableTarget(name: "ShoalTestUDPEcho", path: "Sources/ShoalTestUDPEcho", linkerSettings: [.unsafeFlags(["-static-executable"])]),

        // Cores (sans-IO)
        .target(name: "Raft", path: "Sources/Raft"),
        .target(name: "ClusterState", dependencies: ["Wire"], path: "Sources/ClusterState"),
        .target(name: "Scheduler", dependencies: ["ClusterState"], path: "Sources/Scheduler"),
        .target(name: "Orchestrator", dependencies: ["ClusterState", "Scheduler"], path: "Sources/Orchestrator"),
        .target(name: "Manager", dependencies: ["Raft", "ClusterState", "Storage", "Net", "RPC", "Wire", "RaftWire"], path: "Sources/Manager"),
        .target(name: "Daemon", dependencies: ["Manager", "ClusterState", "Storage", "Net", "RPC", "HTTP", "Raft", "COpenSSL", "Agent", "Scheduler", "Orchestrator", "Runtime", "Images", "Registry"], path: "Sources/Daemon", exclude: ["openapi.json"]),

        // Foundations
        .target(name: "Posix", path: "Sources/Posix"),
        .target(name: "Wire", path: "Sources/Wire"),
        .target(name: "RaftWire", dependencies: ["Raft", "Wire"], path: "Sources/RaftWire"),
        .target(name: "Net", dependencies: ["COpenSSL", "Posix"], path: "Sources/Net"),
        .target(name: "HTTP", dependencies: ["Net"], path: "Sources/HTTP"),
        .target(name: "RPC", dependencies: ["Net", "Wire"], path: "Sources/RPC"),
        .target(name: "Storage", dependencies: ["CSQLite", "Raft", "Wire"], path: "Sources/Storage"),
        .target(name: "Images", dependencies: ["CZlib", "COpenSSL", "CSQLite", "Storage", "Posix"], path: "Sources/Images"),
        .target(name: "Runtime", dependencies: ["CContainer", "CZlib", "Posix", "Net", "Wire"], path: "Sources/Runtime"),
        .target(name: "Registry", dependencies: ["Images", "HTTP", "Net"], path: "Sources/Registry"),
        .target(name: "Agent", dependencies: ["ClusterState", "Runtime", "Images", "Registry", "RPC", "Net"], path: "Sources/Agent"),

        // Simulation: deterministic whole-cluster runs
        .target(name: "Simulation", dependencies: ["Raft", "ClusterState", "Scheduler", "Orchestrator"], path: "Simulations/Simulation"),
        .executableTarget(name: "ShoalSim", dependencies: ["Simulation"], path: "Simulations/ShoalSim"),

        // Executables
        // Static Swift runtime and Foundation: every CLI call starts this binary, and loading the shared
        // libraries (libFoundation, ICU, ...) cost ~8 ms of each start here, more than crun's whole run.
        // The modules were compiled against the shared Foundation, whose autolink entries lack what the
        // static one needs beside it: those libraries are named here.
        // What the loader still did before main took ~3 ms of the remaining ~4 ms start: binding
        // libcrypto/libssl/libsqlite3's ~6,500 symbols (BIND_NOW) and libstdc++'s, applying ~86k
        // relative relocations of a position-independent executable (copying every page that holds a
        // pointer), and scanning ~11k exported symbols (the Swift backtracer's dladdr at start-up). So:
        // - OpenSSL, SQLite, zlib and libstdc++ are linked statically: StaticLinking/ holds linker
        //   scripts named after the shared libraries that point -lssl ... at the archives (libssl-dev,
        //   libsqlite3-dev, zlib1g-dev and g++ ship them); libstdc++ is named again after ICU, which
        //   needs it. libgcc too (-static-libgcc: its unwinder, and no libgcc_s.so to load and no
        //   second CPUID probe at start-up, ~0.2 ms). Only glibc (libc, libm) is loaded at run time.
        //   A security fix of OpenSSL or SQLite reaches `shoal` by rebuilding it, as with a Go binary.
        // - --no-export-dynamic: nothing loads `shoal` or looks its symbols up (the static stdlib's
        //   link arguments export them all for symbolication, which swift-backtrace does from the file).
        // - -no-pie: no relative relocations at all (Go's default build mode). The libraries, stack,
        //   heap and mmap areas stay randomised; the executable's own code sits at a fixed address.
        // `shoal --version` went from ~4.2 ms to ~1.2 ms here (/bin/true: ~0.6-0.9 ms).
        .executableTarget(name: "Shoal", dependencies: ["Simulation", "Storage", "Daemon", "Images", "Registry", "Runtime"], path: "Sources/Shoal",
                          exclude: ["StaticLinking"],
                          linkerSettings: [.unsafeFlags(["-L\(Context.packageDirectory)/Sources/Shoal/StaticLinking",
                                                         "-static-stdlib", "-lCoreFoundation", "-l_FoundationICU", "-l_FoundationCShims",
                                                         "-l_FoundationCollections", "-lswiftSynchronization", "-lstdc++",
                                                         "-Xclang-linker", "-static-libgcc",
                                                         "-Xlinker", "--no-export-dynamic", "-Xlinker", "-no-pie"])]),
        .executableTarget(name: "ShoalBench", dependencies: ["Raft", "ClusterState", "Scheduler", "Storage", "Net", "RPC", "HTTP", "Daemon", "Images", "Registry", "CZlib", "Runtime"], path: "Sources/ShoalBench"),

        // Tests. TestSupport: helpers every test target may share (temporary directories, child processes,
        // the built shoal binary); it imports only Foundation so any suite can depend on it.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "WireTests", dependencies: ["Wire", "RaftWire", "Raft"], path: "Tests/WireTests"),
        .testTarget(name: "NetTests", dependencies: ["Net", "Raft"], path: "Tests/NetTests"),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP", "Net", "Raft", "TestSupport"], path: "Tests/HTTPTests"),
        .testTarget(name: "RPCTests", dependencies: ["RPC", "Net", "Posix", "Wire", "Raft"], path: "Tests/RPCTests"),
        .testTarget(name: "RaftTests", dependencies: ["Raft"], path: "Tests/RaftTests"),
        .testTarget(name: "ClusterStateTests", dependencies: ["ClusterState", "Wire", "Raft"], path: "Tests/ClusterStateTests"),
        .testTarget(name: "SchedulerTests", dependencies: ["Scheduler", "ClusterState", "Raft"], path: "Tests/SchedulerTests"),
        .testTarget(name: "OrchestratorTests", dependencies: ["Orchestrator", "Scheduler", "ClusterState", "Raft"], path: "Tests/OrchestratorTests"),
        .testTarget(name: "ManagerTests", dependencies: ["Manager", "ClusterState", "Raft", "Storage", "Net", "RPC"], path: "Tests/ManagerTests"),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "Manager", "ClusterState", "Raft", "Storage", "Net", "RPC", "HTTP", "Runtime", "TestSupport"], path: "Tests/DaemonTests"),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "Raft", "TestSupport"], path: "Tests/StorageTests"),
        .testTarget(name: "ImagesTests", dependencies: ["Images", "CZlib", "Storage", "TestSupport"], path: "Tests/ImagesTests"),
        .testTarget(name: "RegistryTests", dependencies: ["Registry", "Images", "HTTP", "Net", "TestSupport"], path: "Tests/RegistryTests"),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "Posix", "CZlib", "Net", "Wire", "TestSupport"], path: "Tests/RuntimeTests"),
        .testTarget(name: "ServicesTests", dependencies: ["Daemon", "Agent", "Manager", "ClusterState", "Images", "Registry", "Runtime", "RPC", "Net", "HTTP", "TestSupport"], path: "Tests/ServicesTests"),
        .testTarget(name: "SimulationTests", dependencies: ["Simulation", "Raft", "ClusterState", "Scheduler", "Orchestrator"], path: "Tests/SimulationTests"),
    ],
    swiftLanguageModes: [.v6]
)
