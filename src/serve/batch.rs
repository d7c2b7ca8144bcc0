//! recvmmsg(2) and sendmmsg(2): a burst of datagrams in one system call each.
//!
//! On a loaded resolver most of the CPU goes to the kernel, and a good share of
//! that is per-call overhead; taking up to [`BATCH`] queries per receive and
//! sending their answers together cuts it, the way Unbound and dnsdist do.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::ptr;

use socket2::SockAddr;

/// Datagrams per system call.
pub(super) const BATCH: usize = 32;
/// Queries are small; a larger datagram is reported truncated and dropped.
const SLOT: usize = 4096;

/// Receive buffers, the senders' addresses and the answers of one burst.
pub(super) struct Batch {
    bufs: Box<[[u8; SLOT]]>,
    addrs: Box<[libc::sockaddr_storage]>,
    addr_lens: [libc::socklen_t; BATCH],
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
        }
        // SAFETY: every header points at a live buffer and address of this
        // batch, with their true sizes; the kernel writes within them only.
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
        }
        Ok(n)
    }

    /// Datagram `i`, its sender and its response buffer; `None` for a truncated
    /// datagram or a non-IP sender.
    pub(super) fn query(&mut self, i: usize) -> Option<(&[u8], SocketAddr, &mut Vec<u8>)> {
        if self.truncated[i] {
            return None;
        }
        let client = socket_addr(&self.addrs[i])?;
        Some((
            &self.bufs[i][..self.lens[i]],
            client,
            &mut self.responses[i],
        ))
    }

    /// The response to datagram `i` is written: send it with the burst.
    pub(super) fn mark_ready(&mut self, i: usize) {
        self.ready[i] = true;
    }

    /// Sends the ready responses of the first `n` datagrams, then `queued`
    /// (answers to earlier misses), in as few calls as [`BATCH`] allows.
    /// Returns how many went; when the socket's buffer is full the rest are
    /// left, in [`Batch::outgoing`] order, for the caller to send one by one.
    pub(super) fn send(&self, fd: RawFd, n: usize, queued: &[(Vec<u8>, SockAddr)]) -> usize {
        send_all(fd, self.outgoing(n, queued))
    }

    /// Every response to send: the ready ones of the first `n` datagrams, then `queued`.
    pub(super) fn outgoing<'a>(
        &'a self,
        n: usize,
        queued: &'a [(Vec<u8>, SockAddr)],
    ) -> impl Iterator<Item = (&'a [u8], To<'a>)> + 'a {
        let answered = (0..n).filter(|&i| self.ready[i]).map(|i| {
            (
                self.responses[i].as_slice(),
                To::Sender(&self.addrs[i], self.addr_lens[i]),
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
/// kernel wrote for it, or to the client of a queued answer.
pub(super) enum To<'a> {
    Sender(&'a libc::sockaddr_storage, libc::socklen_t),
    Queued(&'a SockAddr),
}

impl To<'_> {
    /// The address as sendmmsg takes it.
    fn raw(&self) -> (*mut libc::c_void, libc::socklen_t) {
        match self {
            Self::Sender(storage, len) => (ptr::from_ref(*storage).cast_mut().cast(), *len),
            Self::Queued(to) => (to.as_ptr().cast_mut().cast(), to.len()),
        }
    }

    pub(super) fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Sender(storage, _) => socket_addr(storage),
            Self::Queued(to) => to.as_socket(),
        }
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
