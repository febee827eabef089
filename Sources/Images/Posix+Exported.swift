// Callers of the image store catch `SystemError` by name.
@_exported import Posix
