using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using static Duplex.Transport.LinuxNative;

namespace Duplex.Transport;

/// <summary>Something the loop watches: told which events fired.</summary>
internal interface IReady
{
    void OnReady(uint events);
}

/// <summary>
/// An epoll loop on a thread of its own (Linux, x86-64). Sockets attached to it are read and
/// written with direct non-blocking system calls; when one would block, the loop wakes the
/// waiter and runs its continuation inline. So a server's receive → handle → send cycle runs
/// start to finish on the loop thread, with no hop to the thread pool per read. This is the shape
/// of uWebSockets and Node; application code on this path must not block.
/// </summary>
internal sealed unsafe class EventLoop
{
    private static readonly Lazy<EventLoop[]> Loops = new(() =>
        Enumerable.Range(0, Math.Max(1, Environment.ProcessorCount)).Select(i => new EventLoop(i)).ToArray());
    private static int s_next;

    private readonly int _epoll;
    private readonly ConcurrentDictionary<ulong, IReady> _streams = new();
    private readonly LoopTurn _turn = new();   // what this loop's turn sends is flushed when it ends
    private long _nextId;

    /// <summary>True where the loop can run: Linux on x86-64 (where the epoll_event layout is known).</summary>
    public static bool IsSupported { get; } = OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64;

    /// <summary>Attaches a connected socket to one of the loops (round robin) and returns a stream over it.</summary>
    public static EventLoopStream Attach(Socket socket)
    {
        var loops = Loops.Value;
        var loop = loops[(int)((uint)Interlocked.Increment(ref s_next) % (uint)loops.Length)];
        return loop.Register(socket);
    }

    private EventLoop(int index)
    {
        _epoll = epoll_create1(EpollCloexec);
        if (_epoll < 0)
            throw new SocketException(Marshal.GetLastPInvokeError());
        var thread = new Thread(Run) { IsBackground = true, Name = $"Duplex event loop {index}" };
        thread.Start();
    }

    /// <summary>
    /// Accepts connections on the loop thread: each new socket is handed to <paramref name="accepted"/>
    /// there, with no thread-pool hop and no context switch per connection. Dispose the result to stop.
    /// </summary>
    public static IDisposable Listen(Socket listener, Action<Socket> accepted)
    {
        var loop = Loops.Value[0];
        listener.Blocking = false;
        ulong id = (ulong)Interlocked.Increment(ref loop._nextId);
        var acceptor = new Acceptor(loop, listener, id, accepted);
        loop._streams[id] = acceptor;
        // Level-triggered: the loop accepts a few connections per turn and is told again next turn
        // while more wait, so a burst of connects is served in turns with everything else.
        var ev = new EpollEvent { Events = EpollIn, Data = id };
        if (epoll_ctl(loop._epoll, EpollCtlAdd, (int)listener.Handle, &ev) != 0)
        {
            loop._streams.TryRemove(id, out _);
            throw new SocketException(Marshal.GetLastPInvokeError());
        }
        return acceptor;
    }

    private sealed class Acceptor(EventLoop loop, Socket listener, ulong id, Action<Socket> accepted) : IReady, IDisposable
    {
        private int _stopped;

        // Accepting without a bound starved a burst's first connections: the loop kept accepting
        // while their requests waited for the same thread (first come, served last).
        private const int AcceptsPerTurn = 16;

        public void OnReady(uint events)
        {
            for (int count = 0; count < AcceptsPerTurn && Volatile.Read(ref _stopped) == 0;)
            {
                int fd = accept4((int)listener.Handle, null, null, SockNonblock | SockCloexec);
                if (fd < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == EIntr)
                        continue;
                    if (errno != EAgain)
                        PauseAccepting(); // out of descriptors and the like: a level-triggered listener would spin
                    return;
                }
                count++;
                Socket socket;
                try
                {
                    socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
                }
                catch (SocketException)
                {
                    _ = close(fd);
                    continue;
                }
                accepted(socket);
            }
        }

        // Stops watching the listener for a moment; waiting clients stay in the backlog.
        private void PauseAccepting()
        {
            var off = new EpollEvent { Events = 0, Data = id };
            _ = epoll_ctl(loop._epoll, EpollCtlMod, (int)listener.Handle, &off);
            _ = Task.Delay(100).ContinueWith(delay =>
            {
                if (Volatile.Read(ref _stopped) != 0)
                    return;
                var on = new EpollEvent { Events = EpollIn, Data = id };
                _ = epoll_ctl(loop._epoll, EpollCtlMod, (int)listener.Handle, &on);
            }, TaskScheduler.Default);
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _stopped, 1) != 0)
                return;
            if (loop._streams.TryRemove(id, out _))
            {
                var ev = default(EpollEvent);
                _ = epoll_ctl(loop._epoll, EpollCtlDel, (int)listener.Handle, &ev);
            }
        }
    }

    private EventLoopStream Register(Socket socket)
    {
        socket.Blocking = false;
        ulong id = (ulong)Interlocked.Increment(ref _nextId);
        var stream = new EventLoopStream(this, socket, id);
        _streams[id] = stream;
        // Write readiness is asked for only when a write would block (see WatchWrites): with it
        // always on, every ACK of sent data would wake the loop for nothing.
        var ev = new EpollEvent { Events = ReadEvents, Data = id };
        if (epoll_ctl(_epoll, EpollCtlAdd, (int)socket.Handle, &ev) != 0)
        {
            _streams.TryRemove(id, out _);
            throw new SocketException(Marshal.GetLastPInvokeError());
        }
        return stream;
    }

    private const int SpinPolls = 200;
    private const uint ReadEvents = EpollIn | EpollRdHup | EpollEt;

    /// <summary>Turns write readiness events on (a write would block) or off (it went through).</summary>
    internal void WatchWrites(EventLoopStream stream, int fd, bool on)
    {
        var ev = new EpollEvent { Events = ReadEvents | (on ? EpollOut : 0), Data = stream.Id };
        _ = epoll_ctl(_epoll, EpollCtlMod, fd, &ev);
    }

    internal void Unregister(EventLoopStream stream, int fd)
    {
        if (_streams.TryRemove(stream.Id, out _))
        {
            var ev = default(EpollEvent);
            _ = epoll_ctl(_epoll, EpollCtlDel, fd, &ev);
        }
    }

    private void Run()
    {
        const int capacity = 256;
        var events = stackalloc EpollEvent[capacity];
        while (true)
        {
            // Poll without sleeping for a short while before blocking: a loop that sleeps at once
            // pays the wake-up of an idle CPU (tens of microseconds in a VM) on every message of a
            // request-response exchange.
            int count = 0;
            long spinUntil = Environment.TickCount64 + 1;
            for (int spin = 0; count == 0 && spin < SpinPolls && Environment.TickCount64 <= spinUntil; spin++)
                count = epoll_wait(_epoll, events, capacity, 0);
            if (count == 0)
                count = epoll_wait(_epoll, events, capacity, -1);
            if (count < 0)
            {
                if (Marshal.GetLastPInvokeError() == EIntr)
                    continue;
                return;
            }
            _turn.Begin();
            for (int i = 0; i < count; i++)
            {
                if (!_streams.TryGetValue(events[i].Data, out var ready))
                    continue;
                try
                {
                    ready.OnReady(events[i].Events);
                }
                catch (Exception e)
                {
                    // Continuations run here; one that throws must not stop the loop for everyone.
                    Environment.FailFast("Duplex event loop: a continuation threw on the loop thread", e);
                }
            }
            _turn.End();
        }
    }
}
