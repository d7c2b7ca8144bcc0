//! What an upstream query's source port costs, per query, for each way of
//! giving every query a port of its own.
//!
//! RFC 5452 §9.2: resolver implementations MUST "Use an unpredictable source
//! port for outgoing queries from the range of available ports (53, or 1024
//! and above) that is as large as possible and practicable", "Use multiple
//! different source ports simultaneously in case of multiple outstanding
//! queries" and "Use an unpredictable query ID for outgoing queries, utilizing
//! the full range available (0-65535)". §10: "This document recommends the
//! use of UDP source port number randomization to extend the effective DNS
//! transaction ID beyond the available 16 bits." A forged answer has to guess
//! both, so what a query has against it is its port's bits plus the ID's 16.
//!
//! One iteration is one query: take a socket with a fresh port, send a 40-byte
//! datagram to a loopback server socket, echo it from the server (in the same
//! thread, with recvfrom and sendto, so that a run is deterministic), read the
//! reply, give the port back. The variants:
//!
//! - `floor`: one connected socket, no port work; every other variant minus
//!   this one is what its port costs. `floor_sendto`: one socket bound once
//!   and sending with sendto as the others do, which also pays the route
//!   lookup that a connected socket caches.
//! - `dissolve`: reused sockets that hold no port between queries. sendto
//!   makes the kernel bind one at random from the whole ephemeral range, and
//!   connect(2) to `AF_UNSPEC` after the reply gives it back (Linux
//!   `udp_disconnect` unhashes a port it chose itself), so the next send draws
//!   a new one: one syscall per query.
//! - `socket_per_query`: socket(2), epoll_ctl(ADD) as an event loop must,
//!   sendto (the kernel binds a port), recv, close(2).
//! - `fixed_pool/N`: N sockets bound once to random ports, one picked at
//!   random per query. No port syscalls, but the port has only log2(N) bits.
//! - `rotating_pool/N`: as `fixed_pool`, but the socket used is replaced after
//!   every query by a new one bound to a new random port (close, socket,
//!   epoll_ctl ADD, bind): the whole range, as `dissolve`. Dissolving and
//!   binding the same socket again is no way out: a port given with bind(2) is
//!   locked to its socket and survives the dissolve (checked before timing).
//! - `io_uring_dissolve/32`: `dissolve`, the connects of 32 queries submitted
//!   through io_uring at once.
//! - `io_uring_socket_close/32`: `socket_per_query`, its socket, epoll_ctl and
//!   close submitted through io_uring, 32 of each at once.
//!
//! Before timing, each variant sends 10,000 queries and prints how many of
//! their source ports differ (and how many would if each were drawn uniformly
//! from the ports the variant can use), the lowest and highest, the share of
//! the ephemeral range between them, a chi-square over 16 equal slices of the
//! range (15 degrees of freedom: above 30.6 is uneven at p < 0.01), and the
//! entropy of a query: the port's bits plus the ID's 16.

use std::collections::HashSet;
use std::hint::black_box;
use std::io;
use std::mem::zeroed;
use std::net::Ipv4Addr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use io_uring::{IoUring, Probe, opcode, types};

/// Queries whose source ports are looked at before timing.
const SAMPLE: usize = 10_000;

/// Queries whose port work io_uring does in one submission.
const RING_BATCH: usize = 32;

const SOCK_TYPE: i32 = libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;

/// How tokio registers a socket with epoll.
const EPOLL_FLAGS: u32 = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;

type Addr = libc::sockaddr_in;
const ADDR_LEN: libc::socklen_t = size_of::<Addr>() as libc::socklen_t;

fn addr(ip: Ipv4Addr, port: u16) -> Addr {
    // SAFETY: sockaddr_in is plain data, for which all zeroes is a value.
    let mut a: Addr = unsafe { zeroed() };
    a.sin_family = libc::AF_INET as libc::sa_family_t;
    a.sin_port = port.to_be();
    a.sin_addr.s_addr = u32::from(ip).to_be();
    a
}

fn check(ret: i64, what: &str) -> i64 {
    if ret < 0 {
        panic!("{what}: {}", io::Error::last_os_error());
    }
    ret
}

fn udp_socket() -> RawFd {
    // SAFETY: socket(2) takes no pointers.
    check(
        unsafe { libc::socket(libc::AF_INET, SOCK_TYPE, 0) }.into(),
        "socket",
    ) as RawFd
}

fn close(fd: RawFd) {
    // SAFETY: the caller owns `fd` and does not use it again.
    check(unsafe { libc::close(fd) }.into(), "close");
}

fn bind(fd: RawFd, port: u16) -> io::Result<()> {
    let a = addr(Ipv4Addr::UNSPECIFIED, port);
    // SAFETY: `a` is a sockaddr_in of the length passed.
    if unsafe { libc::bind(fd, (&raw const a).cast(), ADDR_LEN) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn connect(fd: RawFd, to: &Addr) {
    // SAFETY: `to` is a sockaddr_in of the length passed.
    check(
        unsafe { libc::connect(fd, (to as *const Addr).cast(), ADDR_LEN) }.into(),
        "connect",
    );
}

/// An `AF_UNSPEC` address: connecting to it dissolves a UDP socket's
/// association and gives back a port the kernel chose.
fn unspecified() -> libc::sockaddr_storage {
    // SAFETY: all zeroes is a sockaddr_storage whose family is AF_UNSPEC.
    unsafe { zeroed() }
}

fn dissolve(fd: RawFd) {
    let unspec = unspecified();
    let len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `unspec` is a sockaddr_storage of the length passed.
    check(
        unsafe { libc::connect(fd, (&raw const unspec).cast(), len) }.into(),
        "connect AF_UNSPEC",
    );
}

/// The socket's local port, 0 if it holds none.
fn local_port(fd: RawFd) -> u16 {
    // SAFETY: as in `addr`.
    let mut a: Addr = unsafe { zeroed() };
    let mut len = ADDR_LEN;
    // SAFETY: `a` and `len` are writable and `len` is `a`'s size.
    check(
        unsafe { libc::getsockname(fd, (&raw mut a).cast(), &raw mut len) }.into(),
        "getsockname",
    );
    u16::from_be(a.sin_port)
}

struct Epoll(RawFd);

impl Epoll {
    fn new() -> Self {
        // SAFETY: epoll_create1 takes no pointers.
        Self(check(
            unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) }.into(),
            "epoll",
        ) as RawFd)
    }

    fn add(&self, fd: RawFd) {
        let mut event = libc::epoll_event {
            events: EPOLL_FLAGS,
            u64: fd as u64,
        };
        // SAFETY: `event` is a valid epoll_event for the call.
        check(
            unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_ADD, fd, &raw mut event) }.into(),
            "epoll_ctl",
        );
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        close(self.0);
    }
}

/// xorshift64*: random enough to spread ports and IDs in a benchmark, and
/// cheap enough not to show in its times.
struct Rng(u64);

impl Rng {
    fn new(salt: u64) -> Self {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Self(
            (now ^ (u64::from(std::process::id()) << 32)
                ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                | 1,
        )
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The ephemeral port range, from which the kernel binds ports.
#[derive(Clone, Copy)]
struct PortRange {
    low: u16,
    high: u16,
}

impl PortRange {
    fn of_kernel() -> Self {
        let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .unwrap_or_else(|_| "32768 60999".into());
        let mut bounds = text.split_whitespace().map(|n| n.parse::<u16>().unwrap());
        Self {
            low: bounds.next().unwrap(),
            high: bounds.next().unwrap(),
        }
    }

    fn size(self) -> u32 {
        u32::from(self.high) - u32::from(self.low) + 1
    }

    fn pick(self, rng: &mut Rng) -> u16 {
        self.low + rng.below(self.size() as usize) as u16
    }

    /// Binds `fd` to a random free port of the range.
    fn bind_random(self, fd: RawFd, rng: &mut Rng) -> u16 {
        loop {
            let port = self.pick(rng);
            match bind(fd, port) {
                Ok(()) => return port,
                Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {}
                Err(e) => panic!("bind {port}: {e}"),
            }
        }
    }
}

/// The loopback server and the query it echoes.
struct Echo {
    server: RawFd,
    to: Addr,
    query: [u8; 40],
    buf: [u8; 512],
    ids: Rng,
}

impl Echo {
    fn new() -> Self {
        // SAFETY: socket(2) takes no pointers.
        let server = check(
            unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) }.into(),
            "socket",
        ) as RawFd;
        let a = addr(Ipv4Addr::LOCALHOST, 0);
        // SAFETY: `a` is a sockaddr_in of the length passed.
        check(
            unsafe { libc::bind(server, (&raw const a).cast(), ADDR_LEN) }.into(),
            "bind server",
        );
        // A lost datagram fails the run instead of hanging it.
        let timeout = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        // SAFETY: `timeout` is a timeval of the size passed.
        check(
            unsafe {
                libc::setsockopt(
                    server,
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&raw const timeout).cast(),
                    size_of::<libc::timeval>() as libc::socklen_t,
                )
            }
            .into(),
            "SO_RCVTIMEO",
        );
        // A 40-byte A query for splitdns-up.bench.test: header, name, type, class.
        let mut query = [0u8; 40];
        query[2] = 0x01; // RD
        query[5] = 1; // QDCOUNT
        let name = b"\x0bsplitdns-up\x05bench\x04test\x00";
        query[12..12 + name.len()].copy_from_slice(name);
        query[36..].copy_from_slice(&[0, 1, 0, 1]);
        Self {
            server,
            to: addr(Ipv4Addr::LOCALHOST, local_port(server)),
            query,
            buf: [0; 512],
            ids: Rng::new(0),
        }
    }

    /// One query from `client` with a random ID: sent with sendto (or send,
    /// if `client` is connected to the server), echoed, and its reply read.
    fn exchange(&mut self, client: RawFd, connected: bool) {
        let id = (self.ids.next() >> 48) as u16;
        self.query[..2].copy_from_slice(&id.to_be_bytes());
        let q = &self.query;
        // SAFETY: the buffer and the address are valid for their lengths.
        let sent = unsafe {
            if connected {
                libc::send(client, q.as_ptr().cast(), q.len(), 0)
            } else {
                libc::sendto(
                    client,
                    q.as_ptr().cast(),
                    q.len(),
                    0,
                    (&raw const self.to).cast(),
                    ADDR_LEN,
                )
            }
        };
        check(sent as i64, "send query");

        // SAFETY: as in `addr`.
        let mut from: Addr = unsafe { zeroed() };
        let mut from_len = ADDR_LEN;
        // SAFETY: `buf`, `from` and `from_len` are writable for their lengths.
        let len = unsafe {
            libc::recvfrom(
                self.server,
                self.buf.as_mut_ptr().cast(),
                self.buf.len(),
                0,
                (&raw mut from).cast(),
                &raw mut from_len,
            )
        };
        let len = check(len as i64, "server recvfrom") as usize;
        // SAFETY: `buf` holds `len` bytes; `from` is the sender's address.
        let sent = unsafe {
            libc::sendto(
                self.server,
                self.buf.as_ptr().cast(),
                len,
                0,
                (&raw const from).cast(),
                from_len,
            )
        };
        check(sent as i64, "server sendto");

        let len = self.read_reply(client);
        assert!(
            len == self.query.len() && self.buf[..2] == id.to_be_bytes(),
            "not the reply"
        );
    }

    /// Reads from the non-blocking `client`, spinning while nothing is there
    /// yet (on loopback the reply is there by the time the server's send
    /// returns, nearly always).
    fn read_reply(&mut self, client: RawFd) -> usize {
        let started = Instant::now();
        loop {
            // SAFETY: `buf` is writable for its length.
            let len =
                unsafe { libc::recv(client, self.buf.as_mut_ptr().cast(), self.buf.len(), 0) };
            if len >= 0 {
                return len as usize;
            }
            let e = io::Error::last_os_error();
            assert!(
                e.kind() == io::ErrorKind::WouldBlock && started.elapsed() < Duration::from_secs(2),
                "client recv: {e}"
            );
            std::hint::spin_loop();
        }
    }
}

/// One way of giving queries their ports.
trait Variant {
    /// Runs `queries` queries, a multiple of `batch`; with `ports`, adds the
    /// source port of each to it.
    fn run(&mut self, echo: &mut Echo, queries: usize, ports: &mut Option<Vec<u16>>);

    /// Queries whose port work is done together.
    fn batch(&self) -> usize {
        1
    }
}

fn note_port(ports: &mut Option<Vec<u16>>, fd: RawFd) {
    if let Some(ports) = ports {
        ports.push(local_port(fd));
    }
}

fn close_all(fds: &[RawFd]) {
    fds.iter().copied().for_each(close);
}

struct Floor {
    fd: RawFd,
    connected: bool,
    _epoll: Epoll,
}

impl Floor {
    fn connected(echo: &Echo) -> Self {
        let fd = udp_socket();
        connect(fd, &echo.to);
        Self::register(fd, true)
    }

    fn sendto() -> Self {
        let fd = udp_socket();
        bind(fd, 0).unwrap();
        Self::register(fd, false)
    }

    fn register(fd: RawFd, connected: bool) -> Self {
        let epoll = Epoll::new();
        epoll.add(fd);
        Self {
            fd,
            connected,
            _epoll: epoll,
        }
    }
}

impl Variant for Floor {
    fn run(&mut self, echo: &mut Echo, queries: usize, ports: &mut Option<Vec<u16>>) {
        for _ in 0..queries {
            echo.exchange(self.fd, self.connected);
            note_port(ports, self.fd);
        }
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        close(self.fd);
    }
}

struct Dissolve {
    idle: Vec<RawFd>,
    epoll: Epoll,
}

impl Variant for Dissolve {
    fn run(&mut self, echo: &mut Echo, queries: usize, ports: &mut Option<Vec<u16>>) {
        for _ in 0..queries {
            let fd = self.idle.pop().unwrap_or_else(|| {
                let fd = udp_socket();
                self.epoll.add(fd);
                fd
            });
            echo.exchange(fd, false);
            note_port(ports, fd);
            dissolve(fd);
            self.idle.push(fd);
        }
    }
}

impl Drop for Dissolve {
    fn drop(&mut self) {
        close_all(&self.idle);
    }
}

struct SocketPerQuery {
    epoll: Epoll,
}

impl Variant for SocketPerQuery {
    fn run(&mut self, echo: &mut Echo, queries: usize, ports: &mut Option<Vec<u16>>) {
        for _ in 0..queries {
            let fd = udp_socket();
            self.epoll.add(fd);
            echo.exchange(fd, false);
            note_port(ports, fd);
            close(fd);
        }
    }
}

/// `fixed_pool` and, when `rotate`, `rotating_pool`.
struct Pool {
    fds: Vec<RawFd>,
    epoll: Epoll,
    range: PortRange,
    rng: Rng,
    rotate: bool,
}

impl Pool {
    fn new(size: usize, range: PortRange, rotate: bool) -> Self {
        let mut pool = Self {
            fds: Vec::with_capacity(size),
            epoll: Epoll::new(),
            range,
            rng: Rng::new(size as u64 + u64::from(rotate)),
            rotate,
        };
        for _ in 0..size {
            let fd = pool.bound_socket();
            pool.fds.push(fd);
        }
        pool
    }

    fn bound_socket(&mut self) -> RawFd {
        let fd = udp_socket();
        self.epoll.add(fd);
        self.range.bind_random(fd, &mut self.rng);
        fd
    }
}

impl Variant for Pool {
    fn run(&mut self, echo: &mut Echo, queries: usize, ports: &mut Option<Vec<u16>>) {
        for _ in 0..queries {
            let i = self.rng.below(self.fds.len());
            echo.exchange(self.fds[i], false);
            note_port(ports, self.fds[i]);
            if self.rotate {
                close(self.fds[i]);
                self.fds[i] = self.bound_socket();
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        close_all(&self.fds);
    }
}

/// Submits what is queued and waits for `n` completions, each of which must
/// have succeeded; returns their results in the order of their user data.
fn complete(ring: &mut IoUring, n: usize, what: &str) -> [i32; RING_BATCH] {
    ring.submit_and_wait(n).expect(what);
    let mut results = [0; RING_BATCH];
    let mut seen = 0;
    for cqe in ring.completion() {
        assert!(
            cqe.result() >= 0,
            "{what}: {}",
            io::Error::from_raw_os_error(-cqe.result())
        );
        results[cqe.user_data() as usize] = cqe.result();
        seen += 1;
    }
    assert_eq!(seen, n, "{what}: completions");
    results
}

fn push(ring: &mut IoUring, entry: &io_uring::squeue::Entry) {
    // SAFETY: every buffer an entry points to outlives its completion, which
    // `complete` waits for before the caller goes on.
    unsafe { ring.submission().push(entry) }.expect("submission queue full");
}

struct RingDissolve {
    ring: IoUring,
    fds: Vec<RawFd>,
    unspec: Box<libc::sockaddr_storage>,
    _epoll: Epoll,
}

impl RingDissolve {
    fn new() -> Self {
        let epoll = Epoll::new();
        let fds = (0..RING_BATCH)
            .map(|_| {
                let fd = udp_socket();
                epoll.add(fd);
                fd
            })
            .collect();
        Self {
            ring: IoUring::new(2 * RING_BATCH as u32).expect("io_uring_setup"),
            fds,
            unspec: Box::new(unspecified()),
            _epoll: epoll,
        }
    }

    /// Dissolves every socket of the batch with one submission.
    fn dissolve_all(&mut self) {
        let len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        for (i, &fd) in self.fds.iter().enumerate() {
            let unspec = (&raw const *self.unspec).cast::<libc::sockaddr>();
            let entry = opcode::Connect::new(types::Fd(fd), unspec, len)
                .build()
                .user_data(i as u64);
            push(&mut self.ring, &entry);
        }
        complete(&mut self.ring, RING_BATCH, "io_uring connect AF_UNSPEC");
    }
}

impl Variant for RingDissolve {
    fn run(&mut self, echo: &mut Echo, queries: usize, ports: &mut Option<Vec<u16>>) {
        for _ in 0..queries / RING_BATCH {
            for &fd in &self.fds {
                echo.exchange(fd, false);
                note_port(ports, fd);
            }
            self.dissolve_all();
        }
    }

    fn batch(&self) -> usize {
        RING_BATCH
    }
}

impl Drop for RingDissolve {
    fn drop(&mut self) {
        close_all(&self.fds);
    }
}

struct RingSocketClose {
    ring: IoUring,
    epoll: Epoll,
    events: Box<[libc::epoll_event; RING_BATCH]>,
    /// IORING_OP_EPOLL_CTL works here; if not, epoll_ctl(2) is called.
    ring_epoll_ctl: bool,
}

impl RingSocketClose {
    fn new(ring_epoll_ctl: bool) -> Self {
        Self {
            ring: IoUring::new(2 * RING_BATCH as u32).expect("io_uring_setup"),
            epoll: Epoll::new(),
            events: Box::new([libc::epoll_event { events: 0, u64: 0 }; RING_BATCH]),
            ring_epoll_ctl,
        }
    }
}

impl Variant for RingSocketClose {
    fn run(&mut self, echo: &mut Echo, queries: usize, ports: &mut Option<Vec<u16>>) {
        for _ in 0..queries / RING_BATCH {
            for i in 0..RING_BATCH {
                let entry = opcode::Socket::new(libc::AF_INET, SOCK_TYPE, 0)
                    .build()
                    .user_data(i as u64);
                push(&mut self.ring, &entry);
            }
            let fds = complete(&mut self.ring, RING_BATCH, "io_uring socket");

            if self.ring_epoll_ctl {
                for (i, &fd) in fds.iter().enumerate() {
                    self.events[i] = libc::epoll_event {
                        events: EPOLL_FLAGS,
                        u64: fd as u64,
                    };
                    let event = (&raw const self.events[i]).cast::<types::epoll_event>();
                    let entry = opcode::EpollCtl::new(
                        types::Fd(self.epoll.0),
                        types::Fd(fd),
                        libc::EPOLL_CTL_ADD,
                        event,
                    )
                    .build()
                    .user_data(i as u64);
                    push(&mut self.ring, &entry);
                }
                complete(&mut self.ring, RING_BATCH, "io_uring epoll_ctl");
            } else {
                fds.iter().for_each(|&fd| self.epoll.add(fd));
            }

            for &fd in &fds {
                echo.exchange(fd, false);
                note_port(ports, fd);
            }

            for (i, &fd) in fds.iter().enumerate() {
                let entry = opcode::Close::new(types::Fd(fd))
                    .build()
                    .user_data(i as u64);
                push(&mut self.ring, &entry);
            }
            complete(&mut self.ring, RING_BATCH, "io_uring close");
        }
    }

    fn batch(&self) -> usize {
        RING_BATCH
    }
}

/// How many ports a variant draws each query's from, all equally likely.
#[derive(Clone, Copy)]
enum Ports {
    One,
    Pool(usize),
    WholeRange,
}

impl Ports {
    fn choices(self, range: PortRange) -> f64 {
        match self {
            Self::One => 1.0,
            Self::Pool(n) => n as f64,
            Self::WholeRange => f64::from(range.size()),
        }
    }
}

/// Runs `SAMPLE` queries and prints a table row on their ports.
fn spread(
    name: &str,
    variant: &mut dyn Variant,
    ports_from: Ports,
    range: PortRange,
    echo: &mut Echo,
) {
    let queries = SAMPLE.div_ceil(variant.batch()) * variant.batch();
    let mut ports = Some(Vec::with_capacity(queries));
    variant.run(echo, queries, &mut ports);
    let ports = ports.unwrap();

    let distinct = ports.iter().collect::<HashSet<_>>().len();
    let (min, max) = (ports.iter().min().unwrap(), ports.iter().max().unwrap());
    let size = range.size();
    let mut slices = [0u32; 16];
    let mut outside = 0;
    for &p in &ports {
        if (range.low..=range.high).contains(&p) {
            slices[((u32::from(p - range.low)) * 16 / size) as usize] += 1;
        } else {
            outside += 1;
        }
    }
    let expected = ports.len() as f64 / 16.0;
    let chi2: f64 = slices
        .iter()
        .map(|&o| (f64::from(o) - expected).powi(2) / expected)
        .sum();
    let choices = ports_from.choices(range);
    let uniform_distinct = choices * (1.0 - (1.0 - 1.0 / choices).powf(ports.len() as f64));
    let port_bits = choices.log2();
    let span = f64::from(u32::from(*max) - u32::from(*min) + 1) / f64::from(size) * 100.0;
    println!(
        "| {name} | {distinct} of {} | {uniform_distinct:.0} | {min} | {max} | {span:.1}% | {outside} | {chi2:.1} | {port_bits:.2} | {:.2} |",
        ports.len(),
        port_bits + 16.0,
    );
}

/// What the variants rest on, checked on this kernel: printed, never assumed.
fn checks(echo: &mut Echo, range: PortRange) -> (bool, bool) {
    // A port the kernel bound is given back by a dissolve.
    let fd = udp_socket();
    echo.exchange(fd, false);
    let bound = local_port(fd);
    dissolve(fd);
    println!(
        "check: connect(AF_UNSPEC) after an autobind: port {bound} -> {}",
        local_port(fd)
    );
    close(fd);

    // A port given with bind(2) is not, and the socket cannot be bound again.
    let fd = udp_socket();
    let bound = range.bind_random(fd, &mut Rng::new(7));
    echo.exchange(fd, false);
    dissolve(fd);
    let after = local_port(fd);
    let rebind = bind(fd, range.pick(&mut Rng::new(8)));
    println!(
        "check: connect(AF_UNSPEC) after bind({bound}): port {bound} -> {after}; bind again: {}",
        match &rebind {
            Ok(()) => "ok".to_string(),
            Err(e) => e.to_string(),
        }
    );
    close(fd);

    // io_uring: which operations this kernel has, and whether its connect
    // dissolves as connect(2) does.
    let mut ring = IoUring::new(8).expect("io_uring_setup");
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .expect("io_uring probe");
    let has = |code: u8| probe.is_supported(code);
    println!(
        "check: io_uring CONNECT {} SOCKET {} CLOSE {} EPOLL_CTL {}",
        has(opcode::Connect::CODE),
        has(opcode::Socket::CODE),
        has(opcode::Close::CODE),
        has(opcode::EpollCtl::CODE),
    );
    let fd = udp_socket();
    echo.exchange(fd, false);
    let bound = local_port(fd);
    let unspec = unspecified();
    let entry = opcode::Connect::new(
        types::Fd(fd),
        (&raw const unspec).cast(),
        size_of::<libc::sockaddr_storage>() as libc::socklen_t,
    )
    .build()
    .user_data(0);
    push(&mut ring, &entry);
    ring.submit_and_wait(1).expect("io_uring_enter");
    let result = ring.completion().next().expect("a completion").result();
    let after = local_port(fd);
    println!(
        "check: io_uring CONNECT AF_UNSPEC after an autobind: result {result}, port {bound} -> {after}"
    );
    close(fd);
    let ring_dissolves = has(opcode::Connect::CODE) && result == 0 && after == 0;
    let ring_sockets = has(opcode::Socket::CODE) && has(opcode::Close::CODE);
    (ring_dissolves, ring_sockets && has(opcode::EpollCtl::CODE))
}

/// Makes a variant afresh, so each run starts from the same state.
type Make = Box<dyn Fn(&Echo) -> Box<dyn Variant>>;

fn make(f: impl Fn(&Echo) -> Box<dyn Variant> + 'static) -> Make {
    Box::new(f)
}

fn ports(c: &mut Criterion) {
    let range = PortRange::of_kernel();
    let mut echo = Echo::new();
    println!(
        "ephemeral range {}-{} ({} ports, {:.2} bits)",
        range.low,
        range.high,
        range.size(),
        f64::from(range.size()).log2()
    );
    let (ring_dissolves, ring_epoll_ctl) = checks(&mut echo, range);

    let mut variants: Vec<(String, Ports, Make)> = vec![
        (
            "floor".into(),
            Ports::One,
            make(|e| Box::new(Floor::connected(e))),
        ),
        (
            "floor_sendto".into(),
            Ports::One,
            make(|_| Box::new(Floor::sendto())),
        ),
        (
            "dissolve".into(),
            Ports::WholeRange,
            make(|_| {
                Box::new(Dissolve {
                    idle: Vec::new(),
                    epoll: Epoll::new(),
                })
            }),
        ),
        (
            "socket_per_query".into(),
            Ports::WholeRange,
            make(|_| {
                Box::new(SocketPerQuery {
                    epoll: Epoll::new(),
                })
            }),
        ),
    ];
    for n in [64, 1024] {
        variants.push((
            format!("fixed_pool/{n}"),
            Ports::Pool(n),
            make(move |_| Box::new(Pool::new(n, range, false))),
        ));
    }
    variants.push((
        "rotating_pool/64".into(),
        Ports::WholeRange,
        make(move |_| Box::new(Pool::new(64, range, true))),
    ));
    if ring_dissolves {
        variants.push((
            format!("io_uring_dissolve/{RING_BATCH}"),
            Ports::WholeRange,
            make(|_| Box::new(RingDissolve::new())),
        ));
    } else {
        println!("io_uring_dissolve: not run, io_uring's connect does not give the port back here");
    }
    variants.push((
        format!("io_uring_socket_close/{RING_BATCH}"),
        Ports::WholeRange,
        make(move |_| Box::new(RingSocketClose::new(ring_epoll_ctl))),
    ));

    println!();
    println!(
        "| variant | distinct ports | if uniform | min | max | min-max of range | outside range | chi² (16 slices) | port bits | bits per query |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, ports_from, make) in &variants {
        spread(name, make(&echo).as_mut(), *ports_from, range, &mut echo);
    }
    println!();

    let mut group = c.benchmark_group("ports");
    for (name, _, make) in &variants {
        let mut variant = make(&echo);
        let batch = variant.batch();
        group.bench_function(name.as_str(), |b| {
            b.iter_custom(|iters| {
                let queries = (iters as usize).div_ceil(batch) * batch;
                let started = Instant::now();
                variant.run(&mut echo, queries, &mut None);
                black_box(&echo.buf);
                started.elapsed().mul_f64(iters as f64 / queries as f64)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    targets = ports
}
criterion_main!(benches);
