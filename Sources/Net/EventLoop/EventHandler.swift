/// An object registered with an ``EventLoop`` for readiness of one file descriptor.
///
/// The loop calls `handleEvents` on its own thread with the epoll event mask
/// (`EPOLLIN`, `EPOLLOUT`, `EPOLLERR`, `EPOLLHUP`, `EPOLLRDHUP`). Registration is
/// edge-triggered: the handler is told once per change of readiness, so it must
/// record the edge (Net's handlers bump a sequence number) and let whoever waits
/// retry the syscall until `EAGAIN`. The handler must not block.
protocol EventHandler: AnyObject, Sendable {
    func handleEvents(_ events: UInt32)
}
