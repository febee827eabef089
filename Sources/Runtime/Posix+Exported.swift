// Callers of the runtime catch `SystemError` by name.
@_exported import Posix
