//! recvmmsg(2) and sendmmsg(2): a burst of datagrams in one system call each.
//!
//! On a loaded resolver most of the CPU goes to the kernel, and a good share of
//! that is per-call overhead; taking up to [`BATCH`] queries per receive and
//! sending their answers together cuts it, the way Unbound and dnsdist do.
//!
//! A socket bound to a wildcard address (`0.0.0.0`, `::`) is told each
//! datagram's destination address (IP_PKTINFO, IPV6_RECVPKTINFO), and its
//! answer leaves from that address: a client that connected its socket to
//! the address it asked (glibc's resolver does) hears only replies from it
//! (RFC 1122 §4.1.3.5: a UDP reply's source is the request's destination),
//! and the kernel's own choice of source is the route's, which need not be
//! the address asked (127.0.0.2, a second address on an interface).

use std::io;
use std::mem::{self, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::ptr;

use socket2::SockAddr;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams per system call.
pub(super) const BATCH: usize = 32;
/// Queries are small; a larger datagram is reported truncated and dropped.
const SLOT: usize = 4096;
/// Room for one IP_PKTINFO or IPV6_PKTINFO control message, in words so
/// that the buffer is aligned as a `cmsghdr` must be.
const CONTROL_WORDS: usize = 8;

/// The address a datagram came to on a wildcard socket, as its answer's
/// control message gives it back: the answer leaves from there.
#[derive(Clone, Copy)]
pub(super) enum Source {
    V4(libc::in_pktinfo),
    V6(libc::in6_pktinfo),
}

/// A datagram of a burst: its bytes, its sender, the address it came to (on
/// a wildcard socket) and the buffer its response is written into.
pub(super) struct Received<'a> {
    pub(super) packet: &'a [u8],
    pub(super) client: SocketAddr,
    pub(super) source: Option<Source>,
    pub(super) out: &'a mut Vec<u8>,
}

/// Where an answer goes: its client, in the form sendmmsg takes, and the
/// address it leaves from when the socket's own is a wildcard.
#[derive(Clone)]
pub(super) struct Destination {
    pub(super) client: SockAddr,
    pub(super) source: Option<Source>,
}

/// Receive buffers, the senders' addresses and the answers of one burst.
pub(super) struct Batch {
    bufs: Box<[[u8; SLOT]]>,
    addrs: Box<[libc::sockaddr_storage]>,
    addr_lens: [libc::socklen_t; BATCH],
    controls: Box<[[u64; CONTROL_WORDS]; BATCH]>,
    sources: [Option<Source>; BATCH],
    lens: [usize; BATCH],
    truncated: [bool; BATCH],
    /// `responses[i]` is sent back to the sender of datagram `i` when `ready[i]`.
    responses: Vec<Vec<u8>>,
    ready: [bool; BATCH],
}

impl Batch {
    pub(super) fn new() -> Self {
        Self {
            bufs: vec![[0; SLOT]; BATCH].into_boxed_slice(),
            // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
            addrs: vec![unsafe { mem::zeroed::<libc::sockaddr_storage>() }; BATCH]
                .into_boxed_slice(),
            addr_lens: [0; BATCH],
            controls: Box::new([[0; CONTROL_WORDS]; BATCH]),
            sources: [None; BATCH],
            lens: [0; BATCH],
            truncated: [false; BATCH],
            responses: (0..BATCH).map(|_| Vec::with_capacity(512)).collect(),
            ready: [false; BATCH],
        }
    }

    /// Receives up to [`BATCH`] datagrams without blocking; `WouldBlock` when none wait.
    pub(super) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        // SAFETY: iovec and mmsghdr are plain C structs; zeroed is valid, and
        // every pointer set below is filled in before the call.
        let mut iovs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
        for i in 0..BATCH {
            iovs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: SLOT,
            };
            let hdr = &mut hdrs[i].msg_hdr;
            hdr.msg_name = ptr::from_mut(&mut self.addrs[i]).cast();
            hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = &mut iovs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = self.controls[i].as_mut_ptr().cast();
            hdr.msg_controllen = mem::size_of::<[u64; CONTROL_WORDS]>();
        }
        // SAFETY: every header points at a live buffer, address and control
        // buffer of this batch, with their true sizes; the kernel writes
        // within them only.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for (i, hdr) in hdrs.iter().enumerate().take(n) {
            self.lens[i] = hdr.msg_len as usize;
            self.addr_lens[i] = hdr.msg_hdr.msg_namelen;
            self.truncated[i] = hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.ready[i] = false;
            self.sources[i] = if hdr.msg_hdr.msg_controllen == 0 {
                None
            } else {
                // SAFETY: the kernel wrote msg_controllen bytes of control
                // messages into this header's buffer.
                unsafe { source_of(&hdr.msg_hdr) }
            };
        }
        Ok(n)
    }

    /// Datagram `i`; `None` for a truncated datagram or a non-IP sender.
    pub(super) fn query(&mut self, i: usize) -> Option<Received<'_>> {
        if self.truncated[i] {
            return None;
        }
        Some(Received {
            packet: &self.bufs[i][..self.lens[i]],
            client: socket_addr(&self.addrs[i])?,
            source: self.sources[i],
            out: &mut self.responses[i],
        })
    }

    /// The response to datagram `i` is written: send it with the burst.
    pub(super) fn mark_ready(&mut self, i: usize) {
        self.ready[i] = true;
    }

    /// Sends the ready responses of the first `n` datagrams, then `queued`
    /// (answers to earlier misses), in as few calls as [`BATCH`] allows.
    /// Returns how many went; when the socket's buffer is full the rest are
    /// left, in [`Batch::outgoing`] order, for the caller to send one by one.
    pub(super) fn send(&self, fd: RawFd, n: usize, queued: &[(Vec<u8>, Destination)]) -> usize {
        send_all(fd, self.outgoing(n, queued))
    }

    /// Every response to send: the ready ones of the first `n` datagrams, then `queued`.
    pub(super) fn outgoing<'a>(
        &'a self,
        n: usize,
        queued: &'a [(Vec<u8>, Destination)],
    ) -> impl Iterator<Item = (&'a [u8], To<'a>)> + 'a {
        let answered = (0..n).filter(|&i| self.ready[i]).map(|i| {
            (
                self.responses[i].as_slice(),
                To::Sender(&self.addrs[i], self.addr_lens[i], self.sources[i].as_ref()),
            )
        });
        answered.chain(
            queued
                .iter()
                .map(|(bytes, to)| (bytes.as_slice(), To::Queued(to))),
        )
    }
}

/// Sends `outgoing` from `fd`, [`BATCH`] per sendmmsg. Returns how many
/// went: when the socket's buffer is full, the rest are left.
pub(super) fn send_all<'a>(fd: RawFd, outgoing: impl Iterator<Item = (&'a [u8], To<'a>)>) -> usize {
    let mut outgoing = outgoing.peekable();
    let mut sent = 0;
    while outgoing.peek().is_some() {
        // SAFETY: as in recv; zeroed C structs, filled before use.
        let mut iovs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
        // Filled only for an answer that carries its source, so that a socket
        // bound to one address pays nothing for them.
        let mut controls = [const { MaybeUninit::<[u64; CONTROL_WORDS]>::uninit() }; BATCH];
        let mut count = 0;
        for (slot, (bytes, to)) in outgoing.by_ref().take(BATCH).enumerate() {
            iovs[slot] = libc::iovec {
                iov_base: bytes.as_ptr().cast_mut().cast(),
                iov_len: bytes.len(),
            };
            let hdr = &mut hdrs[slot].msg_hdr;
            (hdr.msg_name, hdr.msg_namelen) = to.raw();
            hdr.msg_iov = &mut iovs[slot];
            hdr.msg_iovlen = 1;
            if let Some(source) = to.source() {
                // SAFETY: the control buffer is aligned for a cmsghdr and
                // has room for one pktinfo message.
                unsafe { set_source(hdr, controls[slot].write([0; CONTROL_WORDS]), source) };
            }
            count = slot + 1;
        }
        // SAFETY: the headers point at live response buffers and addresses
        // (a batch's, or queued answers') with their true lengths; the
        // kernel only reads them.
        let done =
            unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), count as u32, libc::MSG_DONTWAIT) };
        let done = usize::try_from(done).unwrap_or(0);
        sent += done;
        if done < count {
            break;
        }
    }
    sent
}

/// Where a response goes: back to a datagram's sender, at the address the
/// kernel wrote for it, or to the client of a queued answer; from the
/// address the query came to, when the socket's is a wildcard.
#[derive(Clone, Copy)]
pub(super) enum To<'a> {
    Sender(
        &'a libc::sockaddr_storage,
        libc::socklen_t,
        Option<&'a Source>,
    ),
    Queued(&'a Destination),
}

impl To<'_> {
    /// The address as sendmmsg takes it.
    fn raw(&self) -> (*mut libc::c_void, libc::socklen_t) {
        match self {
            Self::Sender(storage, len, _) => (ptr::from_ref(*storage).cast_mut().cast(), *len),
            Self::Queued(to) => (to.client.as_ptr().cast_mut().cast(), to.client.len()),
        }
    }

    fn source(&self) -> Option<&Source> {
        match self {
            Self::Sender(_, _, source) => *source,
            Self::Queued(to) => to.source.as_ref(),
        }
    }
}

/// Sends one response when the socket has room, for an answer that a full
/// send buffer held back from its sendmmsg.
pub(super) async fn send_one(socket: &UdpSocket, bytes: &[u8], to: To<'_>) -> io::Result<()> {
    let fd = socket.as_raw_fd();
    socket
        .async_io(Interest::WRITABLE, || {
            if send_all(fd, std::iter::once((bytes, to))) == 1 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        })
        .await
}

/// The address a datagram came to, from its IP_PKTINFO or IPV6_PKTINFO
/// control message, as its answer's control message names it: IPv4 by the
/// local address the kernel gives the datagram (ip(7): its destination, or
/// the interface's address for a broadcast), the route picking the
/// interface; IPv6 by its destination and the interface it came in on (a
/// link-local address means nothing without it).
///
/// # Safety
/// `hdr`'s control buffer holds `msg_controllen` bytes written by the kernel.
unsafe fn source_of(hdr: &libc::msghdr) -> Option<Source> {
    // SAFETY: the caller's promise; the CMSG macros walk within it.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(hdr) };
    while !cmsg.is_null() {
        // SAFETY: a non-null header from CMSG_FIRSTHDR/NXTHDR is within the buffer.
        let (level, kind) = unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type) };
        // SAFETY: the data of a message of this level and type is that struct,
        // possibly unaligned.
        unsafe {
            if level == libc::IPPROTO_IP && kind == libc::IP_PKTINFO {
                let info = ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in_pktinfo>());
                return Some(Source::V4(libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: info.ipi_spec_dst,
                    ipi_addr: libc::in_addr { s_addr: 0 },
                }));
            }
            if level == libc::IPPROTO_IPV6 && kind == libc::IPV6_PKTINFO {
                let info = ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in6_pktinfo>());
                return Some(Source::V6(info));
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        cmsg = unsafe { libc::CMSG_NXTHDR(hdr, cmsg) };
    }
    None
}

/// Puts `source` into `hdr` as its one control message.
///
/// # Safety
/// `control` outlives the send `hdr` is used for.
unsafe fn set_source(hdr: &mut libc::msghdr, control: &mut [u64; CONTROL_WORDS], source: &Source) {
    let (level, kind, data, len) = match source {
        Source::V4(info) => (
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            ptr::from_ref(info).cast::<u8>(),
            mem::size_of::<libc::in_pktinfo>(),
        ),
        Source::V6(info) => (
            libc::IPPROTO_IPV6,
            libc::IPV6_PKTINFO,
            ptr::from_ref(info).cast::<u8>(),
            mem::size_of::<libc::in6_pktinfo>(),
        ),
    };
    hdr.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE and CMSG_LEN are arithmetic; the buffer holds
    // CONTROL_WORDS words, more than CMSG_SPACE of either struct.
    unsafe {
        hdr.msg_controllen = libc::CMSG_SPACE(len as u32) as usize;
        let cmsg = libc::CMSG_FIRSTHDR(hdr);
        (*cmsg).cmsg_level = level;
        (*cmsg).cmsg_type = kind;
        (*cmsg).cmsg_len = libc::CMSG_LEN(len as u32) as usize;
        ptr::copy_nonoverlapping(data, libc::CMSG_DATA(cmsg), len);
    }
}

fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large enough for.
            let sin = unsafe { &*ptr::from_ref(storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*ptr::from_ref(storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}
