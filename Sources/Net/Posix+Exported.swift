// Modules built on Net (RPC, HTTP, Daemon) catch `SystemError` by name.
@_exported import Posix
