//! Syslog listeners: UDP, TCP and TLS.
//!
//! UDP never blocks on the store: a datagram that finds the store's queue full
//! is counted as dropped (`orderwatch_lines_rejected_total{reason="queue_full"}`),
//! and the kernel's own drops are reported from `/proc/net/udp` on `/metrics`.
//! TCP and TLS connections wait for room in the queue instead (back-pressure
//! through TCP), and each connection is closed on its own when it stays silent
//! mid-frame for `idle_timeout` or sends something that cannot be framed.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::event::{LogEvent, Text, now_micros};
use crate::ingest::framing::{Frame, SyslogFramer};
use crate::ingest::{IngestContext, cap_line};
use crate::logstore::{Pending, Rejected, StoreError};
use crate::telemetry::{self, Listener};

/// Most events handed to the store in one append.
const BATCH: usize = 1024;

fn ip_string(addr: &SocketAddr) -> Text {
    Text::from(addr.ip().to_canonical().to_string())
}

/// The sender's address as text, made once per sender rather than once per datagram.
struct PeerCache(Option<(SocketAddr, Text)>);

impl PeerCache {
    fn get(&mut self, peer: SocketAddr) -> Text {
        match &self.0 {
            Some((p, t)) if *p == peer => t.clone(),
            _ => {
                let t = ip_string(&peer);
                self.0 = Some((peer, t.clone()));
                t
            }
        }
    }
}

/// Binds a UDP socket with a large receive buffer, so bursts wait in the kernel rather than being dropped.
pub fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() { socket2::Domain::IPV4 } else { socket2::Domain::IPV6 };
    let sock = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    let _ = sock.set_recv_buffer_size(8 << 20);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

pub async fn run_udp(sock: UdpSocket, ctx: Arc<IngestContext>, shutdown: CancellationToken) {
    let mut buf = vec![0u8; 65_536];
    let mut peers = PeerCache(None);
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => {
                // Take what the kernel already holds before going, and wait for it to be stored.
                let first = sock.try_recv_from(&mut buf).ok();
                let batch = take_datagrams(&sock, &mut buf, &mut peers, &ctx, first, 65_536);
                if !batch.is_empty() {
                    let _ = ctx.store.append(batch, Listener::Udp).await;
                }
                return;
            }
            r = sock.recv_from(&mut buf) => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "syslog UDP receive failed");
                    continue;
                }
            },
        };
        let batch = take_datagrams(&sock, &mut buf, &mut peers, &ctx, Some(first), BATCH);
        let count = batch.len() as u64;
        match ctx.store.try_append(batch, Listener::Udp) {
            Ok(()) => {}
            Err(StoreError::Busy) => telemetry::lines_rejected(Listener::Udp, "queue_full", count),
            Err(_) => {
                telemetry::lines_rejected(Listener::Udp, "store_closed", count);
                return;
            }
        }
    }
}

/// The datagram already in `buf` (`first`: its length and sender; none, none),
/// then every one the socket holds right now, up to `max`, as events; counted
/// as received.
fn take_datagrams(
    sock: &UdpSocket,
    buf: &mut [u8],
    peers: &mut PeerCache,
    ctx: &IngestContext,
    first: Option<(usize, SocketAddr)>,
    max: usize,
) -> Vec<LogEvent> {
    let mut batch = Vec::new();
    let (mut bytes, mut truncated) = (0u64, 0u64);
    let mut next = first;
    while let Some((n, peer)) = next {
        bytes += n as u64;
        let (line, cut) = cap_line(bytes::Bytes::copy_from_slice(&buf[..n]), ctx.max_line_bytes);
        truncated += u64::from(cut);
        batch.push(ctx.parser.event(line, cut, now_micros(), &peers.get(peer)));
        if batch.len() >= max {
            break;
        }
        next = sock.try_recv_from(buf).ok();
    }
    telemetry::lines_received(Listener::Udp, batch.len() as u64, bytes);
    if truncated > 0 {
        telemetry::lines_truncated(Listener::Udp, truncated);
    }
    batch
}

/// Loads a TLS server configuration from PEM files, with messages that say which file is wrong.
pub fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use anyhow::Context;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read TLS certificate file {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("TLS certificate file {} is not valid PEM", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("TLS certificate file {} holds no CERTIFICATE block", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read a private key from {} (PEM, PKCS#8, PKCS#1 or SEC1)", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and private key do not belong together")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TCP (or, with `tls`, TLS) connections until shutdown; each connection
/// is tracked by `tasks` so shutdown can wait for it to hand over what it read.
pub async fn run_stream_listener(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ctx: Arc<IngestContext>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let kind = if tls.is_some() { Listener::Tls } else { Listener::Tcp };
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    // Out of file descriptors, say: wait a little instead of spinning.
                    tracing::warn!(error = %e, listener = kind.as_str(), "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        tasks.spawn(async move {
            match tls {
                None => read_stream(stream, peer, kind, ctx, shutdown).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(ctx.idle_timeout.min(std::time::Duration::from_secs(30)), acceptor.accept(stream)).await;
                    match handshake {
                        Ok(Ok(tls_stream)) => read_stream(tls_stream, peer, kind, ctx, shutdown).await,
                        Ok(Err(e)) => {
                            telemetry::connection_closed(kind, "tls_handshake");
                            tracing::info!(peer = %peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => telemetry::connection_closed(kind, "tls_handshake_timeout"),
                    }
                }
            }
        });
    }
}

/// How many batches one connection may have waiting for fsync at once.
const IN_FLIGHT: usize = 8;

async fn read_stream<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    kind: Listener,
    ctx: Arc<IngestContext>,
    shutdown: CancellationToken,
) {
    let ip = ip_string(&peer);
    let mut frames = FramedRead::with_capacity(stream, SyslogFramer::new(ctx.max_line_bytes), 64 * 1024);
    let mut in_flight: VecDeque<Pending> = VecDeque::new();
    let reason = loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                drain_on_shutdown(&mut frames, &ctx, &ip, kind, &mut in_flight, &shutdown).await;
                break "shutdown";
            }
            // Acknowledgements are taken as they come, not only when reading more,
            // so a batch the disk refused is retried at once, and nothing more is
            // read from this connection until it is stored.
            ack = async { in_flight.front_mut().unwrap().await }, if !in_flight.is_empty() => {
                in_flight.pop_front();
                if let Err(r) = ack
                    && retry(&ctx, r, kind, &shutdown).await.is_err()
                {
                    break "store_closed";
                }
            }
            next = tokio::time::timeout(ctx.idle_timeout, frames.next()), if in_flight.len() < IN_FLIGHT => {
                let first = match next {
                    Err(_) => break "idle_timeout",
                    Ok(None) => break "closed_by_peer",
                    Ok(Some(Err(e))) => {
                        tracing::info!(peer = %peer, error = %e, listener = kind.as_str(), "closing a syslog connection");
                        break "framing_error";
                    }
                    Ok(Some(Ok(frame))) => frame,
                };
                let batch = to_events(&ctx, ready_frames(&mut frames, Some(first)), &ip, kind);
                match submit(&ctx, batch, kind, &shutdown).await {
                    Ok(p) => in_flight.push_back(p),
                    Err(()) => break "store_closed",
                }
            }
        }
    };
    for p in in_flight {
        let _ = settle(&ctx, p, kind, &shutdown).await;
    }
    telemetry::connection_closed(kind, reason);
    tracing::debug!(peer = %peer, listener = kind.as_str(), reason, "syslog connection closed");
}

/// On shutdown, hands over every frame the peer had already sent: what is in
/// the read buffer and in the socket, until it runs dry (bounded in time, so a
/// peer that keeps sending cannot hold the shutdown).
async fn drain_on_shutdown<S: AsyncRead + Unpin>(
    frames: &mut FramedRead<S, SyslogFramer>,
    ctx: &IngestContext,
    ip: &Text,
    kind: Listener,
    in_flight: &mut VecDeque<Pending>,
    shutdown: &CancellationToken,
) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let mut rest = ready_frames(frames, None);
        if rest.is_empty() {
            // Nothing buffered: wait briefly for bytes still on their way through the socket.
            match tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + std::time::Duration::from_millis(50)), frames.next()).await {
                Ok(Some(Ok(frame))) => rest = ready_frames(frames, Some(frame)),
                _ => return,
            }
        }
        let batch = to_events(ctx, rest, ip, kind);
        if let Ok(p) = submit(ctx, batch, kind, shutdown).await {
            in_flight.push_back(p);
        }
        if tokio::time::Instant::now() >= deadline {
            return;
        }
    }
}

/// `first` (if any) and every frame already buffered, without waiting for more.
fn ready_frames<S: AsyncRead + Unpin>(frames: &mut FramedRead<S, SyslogFramer>, first: Option<Frame>) -> Vec<Frame> {
    let mut out: Vec<Frame> = first.into_iter().collect();
    while out.len() < BATCH {
        match frames.next().now_or_never() {
            Some(Some(Ok(frame))) => out.push(frame),
            _ => break,
        }
    }
    out
}

fn to_events(ctx: &IngestContext, frames: Vec<Frame>, ip: &Text, kind: Listener) -> Vec<LogEvent> {
    let received_at = now_micros();
    let (mut bytes, mut truncated) = (0u64, 0u64);
    let batch: Vec<LogEvent> = frames
        .into_iter()
        .map(|f| {
            bytes += f.bytes.len() as u64;
            truncated += u64::from(f.truncated);
            ctx.parser.event(f.bytes, f.truncated, received_at, ip)
        })
        .collect();
    telemetry::lines_received(kind, batch.len() as u64, bytes);
    if truncated > 0 {
        telemetry::lines_truncated(kind, truncated);
    }
    batch
}

async fn submit(ctx: &IngestContext, batch: Vec<LogEvent>, kind: Listener, shutdown: &CancellationToken) -> Result<Pending, ()> {
    match ctx.store.submit(batch, kind).await {
        Ok(p) => Ok(p),
        Err(r) => retry(ctx, r, kind, shutdown).await.map(|()| Pending::done()),
    }
}

/// Waits for a batch to be durable. A batch the disk refused is retried every
/// second, and meanwhile this connection reads nothing more: TCP back-pressure
/// makes the sender keep its lines queued, instead of orderwatch losing them.
async fn settle(ctx: &IngestContext, p: Pending, kind: Listener, shutdown: &CancellationToken) -> Result<(), ()> {
    match p.wait().await {
        Ok(_) => Ok(()),
        Err(r) => retry(ctx, r, kind, shutdown).await,
    }
}

async fn retry(ctx: &IngestContext, mut r: Rejected, kind: Listener, shutdown: &CancellationToken) -> Result<(), ()> {
    let mut warned = false;
    loop {
        let count = r.events.len() as u64;
        if !matches!(r.error, StoreError::Write(_)) || r.events.is_empty() {
            telemetry::lines_rejected(kind, "store_closed", count);
            return Err(());
        }
        if !warned {
            tracing::warn!(error = %r.error, listener = kind.as_str(), lines = count,
                "the store refused a batch; holding this connection and retrying every second");
            warned = true;
        }
        tokio::select! {
            _ = shutdown.cancelled() => {
                telemetry::lines_rejected(kind, "store_write", count);
                return Err(());
            }
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
        match ctx.store.append(std::mem::take(&mut r.events), kind).await {
            Ok(_) => return Ok(()),
            Err(again) => r = again,
        }
    }
}

/// Receive-buffer drops the kernel counted for UDP sockets bound to `port`
/// (the last column of `/proc/net/udp{,6}`); None where that file does not exist.
pub fn kernel_udp_drops(port: u16) -> Option<u64> {
    let mut total = None;
    for file in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let Some(local) = cols.get(1) else { continue };
            let Some(port_hex) = local.rsplit(':').next() else { continue };
            if u16::from_str_radix(port_hex, 16).ok() != Some(port) {
                continue;
            }
            if let Some(drops) = cols.last().and_then(|d| d.parse::<u64>().ok()) {
                *total.get_or_insert(0) += drops;
            }
        }
    }
    total
}
