//! Free loopback ports, and the two raw-TCP checks the harness needs around
//! them: "is something listening" and "has it stopped listening".
//!
//! A port is found by binding `127.0.0.1:0` and reading what the kernel chose.
//! The port is released before the server binds it, so another process could
//! take it in between; the harness retries a start whose server exits early.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// How long one connection attempt may take; loopback answers at once.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct free ports. All are held bound until every one is picked, so
/// the kernel cannot hand out the same port twice (SeaweedFS needs eight).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local_addr of a bound socket").port())
        .collect()
}

/// The loopback address of `port`.
pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A connection to `127.0.0.1:port` with read and write timeouts set, so no
/// probe can block for longer than `io_timeout` per call.
pub(crate) fn connect(port: u16, io_timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&loopback(port), CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(io_timeout))?;
    stream.set_write_timeout(Some(io_timeout))?;
    Ok(stream)
}

/// `Ok` once nothing listens on `port` (the connection is refused).
pub(crate) fn refuses(port: u16) -> Result<(), String> {
    match TcpStream::connect_timeout(&loopback(port), CONNECT_TIMEOUT) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(()),
        Err(e) => Err(e.to_string()),
        Ok(_) => Err(format!("127.0.0.1:{port} still accepts connections")),
    }
}
