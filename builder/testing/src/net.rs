//! The machine's network as the runner sees it: host listeners the guest
//! may reach (each on 127.0.0.1, on a port picked here), and the packets
//! the guest sent, read back from QEMU's pcap dump.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The first NIC's address in QEMU, which the guest sends from.
const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// A listener on 127.0.0.1 counting the connections it accepts.
#[derive(Debug)]
pub struct Listener {
    /// Its name in the test file.
    pub name: String,
    /// Where it listens.
    pub address: SocketAddr,
    /// Where the guest reaches it.
    pub guest: std::net::SocketAddrV4,
    heard: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Listener {
    /// Binds a port on 127.0.0.1 and accepts in a thread until dropped.
    /// Each connection is counted, drained for at most 10 s, and answered
    /// with nothing.
    pub fn start(name: &str, guest: Option<std::net::SocketAddrV4>) -> std::io::Result<Listener> {
        let socket = TcpListener::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        let address = socket.local_addr()?;
        let heard = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopped) = (heard.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match socket.accept() {
                    Ok((stream, _)) => {
                        count.fetch_add(1, Ordering::SeqCst);
                        std::thread::spawn(move || drain(stream));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(_) => break,
                }
            }
        });
        let forward: std::net::Ipv4Addr = airlock_boot::GUEST_FORWARD_ADDRESS
            .parse()
            .expect("an IPv4 address");
        Ok(Listener {
            name: name.to_owned(),
            guest: guest.unwrap_or(std::net::SocketAddrV4::new(forward, address.port())),
            address,
            heard,
            stop,
        })
    }

    /// Connections accepted so far.
    pub fn heard(&self) -> usize {
        self.heard.load(Ordering::SeqCst)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn drain(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut sink = [0u8; 4096];
    while stream.read(&mut sink).is_ok_and(|n| n > 0) {}
}

/// A free TCP port on 127.0.0.1 (bound and released: another process
/// could take it in between, which QEMU then reports).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether a forwarded guest port answers: connects to `address`, sends
/// `send`, and waits until `expect` (or, without one, any byte) arrives.
/// QEMU accepts the host's connection before it knows whether the guest
/// does, so a closed guest port shows as a connection closed with nothing
/// said. Returns what arrived, or why nothing did.
pub fn reach(
    address: SocketAddr,
    send: Option<&str>,
    expect: Option<&str>,
    within: Duration,
) -> Result<String, String> {
    let deadline = Instant::now() + within;
    let mut stream = TcpStream::connect_timeout(&address, within)
        .map_err(|e| format!("connecting to {address}: {e}"))?;
    if let Some(text) = send {
        stream
            .write_all(text.as_bytes())
            .map_err(|e| format!("sending: {e}"))?;
    }
    let mut got = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "nothing {} within {} s (got {:?})",
                expect.map_or("arrived".to_owned(), |e| format!("matching {e:?} arrived")),
                within.as_secs(),
                String::from_utf8_lossy(&got)
            ));
        }
        let _ = stream.set_read_timeout(Some(left.max(Duration::from_millis(10))));
        match stream.read(&mut buffer) {
            Ok(0) => {
                return Err(format!(
                    "the connection was closed after {} bytes ({:?})",
                    got.len(),
                    String::from_utf8_lossy(&got)
                ));
            }
            Ok(n) => got.extend_from_slice(&buffer[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(format!("reading: {e}")),
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        match expect {
            Some(want) if text.contains(want) => return Ok(text),
            None if !got.is_empty() => return Ok(text),
            _ => {}
        }
    }
}

/// What the guest may send without it counting as leaving: ARP, TCP to a
/// listener's port on the forward address, and TCP from a forwarded guest
/// port (answers to the host).
#[derive(Clone, Debug, Default)]
pub struct Allowed {
    /// Where the guest reaches the listeners.
    pub listeners: Vec<std::net::SocketAddrV4>,
    /// The forwarded guest ports.
    pub forwarded: Vec<u16>,
}

/// The packets in a pcap dump that the guest sent and `allowed` does not
/// cover, each described in one line.
pub fn leaving(pcap: &[u8], allowed: &Allowed) -> Result<Vec<String>, String> {
    let packets = airlock_boot::pcap_packets(pcap)?;
    Ok(packets
        .iter()
        .filter(|frame| frame.get(6..12) == Some(&GUEST_MAC[..]))
        .filter_map(|frame| describe(frame, allowed))
        .collect())
}

/// One frame from the guest: None when allowed, else what it was.
fn describe(frame: &[u8], allowed: &Allowed) -> Option<String> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    match ethertype {
        0x0806 => None,
        0x0800 => ipv4(frame.get(14..)?, allowed),
        0x86dd => Some(format!(
            "IPv6 to {}",
            frame
                .get(38..54)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .map_or("?".to_owned(), |b| std::net::Ipv6Addr::from(b).to_string())
        )),
        other => Some(format!("ethertype {other:#06x}")),
    }
}

fn ipv4(packet: &[u8], allowed: &Allowed) -> Option<String> {
    let header = usize::from(packet.first()? & 0x0f) * 4;
    let protocol = *packet.get(9)?;
    let source = std::net::Ipv4Addr::from(<[u8; 4]>::try_from(packet.get(12..16)?).ok()?);
    let target = std::net::Ipv4Addr::from(<[u8; 4]>::try_from(packet.get(16..20)?).ok()?);
    let ports = packet.get(header..header + 4).map(|p| {
        (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        )
    });
    let name = match protocol {
        6 => "TCP",
        17 => "UDP",
        1 => "ICMP",
        _ => "IPv4",
    };
    if protocol == 6
        && let Some((from, to)) = ports
    {
        let to_listener = allowed
            .listeners
            .contains(&std::net::SocketAddrV4::new(target, to));
        if to_listener || allowed.forwarded.contains(&from) {
            return None;
        }
    }
    Some(match ports {
        Some((from, to)) if protocol == 6 || protocol == 17 => {
            format!("{name} {source}:{from} -> {target}:{to}")
        }
        _ => format!("{name} {source} -> {target}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&GUEST_MAC);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn ipv4_tcp(target: [u8; 4], from: u16, to: u16, protocol: u8) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, protocol, 0, 0, 10, 0, 2, 15];
        p.extend_from_slice(&target);
        p.extend_from_slice(&from.to_be_bytes());
        p.extend_from_slice(&to.to_be_bytes());
        p.extend_from_slice(&[0; 16]);
        frame(0x0800, &p)
    }

    fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut out = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
        out.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0]);
        for f in frames {
            out.extend_from_slice(&[0; 8]);
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(f);
        }
        out
    }

    #[test]
    fn only_undeclared_traffic_from_the_guest_counts_as_leaving() {
        let allowed = Allowed {
            listeners: vec!["10.0.2.100:4000".parse().unwrap()],
            forwarded: vec![22],
        };
        let mut from_host = ipv4_tcp([10, 0, 2, 15], 1, 2, 6);
        from_host[6..12].copy_from_slice(&[0x52, 0x55, 10, 0, 2, 2]);
        let dump = pcap(&[
            frame(0x0806, &[0; 28]),
            ipv4_tcp([10, 0, 2, 100], 40000, 4000, 6),
            ipv4_tcp([10, 0, 2, 2], 22, 50000, 6),
            from_host,
            ipv4_tcp([10, 0, 2, 100], 40000, 4001, 6),
            ipv4_tcp([255, 255, 255, 255], 68, 67, 17),
            ipv4_tcp([192, 0, 2, 1], 40001, 443, 6),
            frame(0x86dd, &[0; 40]),
        ]);
        assert_eq!(
            leaving(&dump, &allowed).unwrap(),
            [
                "TCP 10.0.2.15:40000 -> 10.0.2.100:4001",
                "UDP 10.0.2.15:68 -> 255.255.255.255:67",
                "TCP 10.0.2.15:40001 -> 192.0.2.1:443",
                "IPv6 to ::",
            ]
        );
        assert!(leaving(b"not a pcap at all, long enough", &allowed).is_err());
    }

    #[test]
    fn a_listener_counts_connections_and_reach_reads_an_answer() {
        let listener = Listener::start("sink", None).unwrap();
        assert_eq!(listener.heard(), 0);
        let mut stream = TcpStream::connect(listener.address).unwrap();
        stream.write_all(b"hello").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while listener.heard() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(listener.heard(), 1);

        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = server.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            s.write_all(b"SSH-2.0-test\r\n").unwrap();
            let (s2, _) = server.accept().unwrap();
            drop(s2); // closes with nothing said
        });
        let within = Duration::from_secs(5);
        assert!(
            reach(address, None, Some("SSH-2.0"), within)
                .unwrap()
                .starts_with("SSH-2.0-test")
        );
        let closed = reach(address, None, None, within).unwrap_err();
        assert!(closed.contains("closed after 0 bytes"), "{closed}");
    }
}
