//! One hop of a probe: DNS, TCP to the name's addresses, then TLS, each
//! recorded as a layer; and the [`Walk`] that collects the layers of every
//! hop and turns them into a [`ProbeReport`]. The top layer (HTTP or a
//! banner) is [`super::answer`]; following redirects is
//! [`super::redirect`].
//!
//! Everything recorded goes through [`Walk::layer`] and [`Walk::finish`],
//! which cap it (see [`super::text`]).

use super::text::{self, MAX_DETAIL, MAX_LAYER_DETAIL, MAX_SHOWN, MAX_URL, cap, cap_owned};
use super::{ProbeDeps, ProbeError, ProbeReport, answer, dns, ms, tcp, tls};
use crate::config::{AddressMode, Host, Method, Scheme, SiteSpec, Target};
use crate::diagnosis::{Cause, HintFacts, Layer, Sign, Status, hint};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// The most addresses listed when a name resolves to unexpected ones.
const MAX_LISTED: usize = 16;

/// Collects layer reports and what the walk found on the way.
pub(super) struct Walk<'a> {
    pub(super) site: &'a SiteSpec,
    pub(super) started: Instant,
    pub(super) started_at: SystemTime,
    pub(super) layers: Vec<super::LayerReport>,
    /// Redirects followed so far (0: the site's own URL).
    pub(super) hop: u32,
    pub(super) addr: Option<SocketAddr>,
    pub(super) local: Option<IpAddr>,
    pub(super) http_status: Option<u16>,
    pub(super) cert: Option<tls::CertFacts>,
    /// The chain has stayed on the site's origin: its configured headers
    /// may be sent.
    pub(super) on_origin: bool,
    /// Degraded findings that count only if nothing worse is found.
    pub(super) partial: Option<String>,
    pub(super) expiring: Option<String>,
    /// Addresses of a name that were not connected to, said in `detail`.
    pub(super) untried: Option<String>,
    /// The face of the cause found, for its hint.
    pub(super) sign: Option<Sign>,
    /// The method asked with: the site's, until a HEAD is refused.
    pub(super) method: Method,
    /// The status a HEAD was refused with (405, 501): asked again with GET.
    pub(super) head_refused: Option<u16>,
    /// The first redirect from https to plain http, as "from → to".
    pub(super) insecure: Option<String>,
}

/// How one hop ended.
pub(super) enum Hop {
    /// The walk is over: the cause (if any) and the detail sentence.
    Done(Option<Cause>, String),
    /// The server redirects: follow `location` (already absolute).
    Redirect(String, u16),
    /// The server refused HEAD: ask the same URL again with GET.
    AgainWithGet,
}

impl<'a> Walk<'a> {
    pub(super) fn new(site: &'a SiteSpec) -> Walk<'a> {
        Walk {
            site,
            started: Instant::now(),
            started_at: SystemTime::now(),
            layers: Vec::with_capacity(4),
            hop: 0,
            addr: None,
            local: None,
            http_status: None,
            cert: None,
            on_origin: true,
            partial: None,
            expiring: None,
            untried: None,
            sign: None,
            method: site.http.method,
            head_refused: None,
            insecure: None,
        }
    }

    /// Records one layer; its detail is capped at [`MAX_LAYER_DETAIL`].
    pub(super) fn layer(&mut self, layer: Layer, ok: bool, elapsed: Duration, detail: String) {
        let detail = if self.hop == 0 {
            detail
        } else {
            format!("redirect {}: {detail}", self.hop)
        };
        self.layers.push(super::LayerReport {
            layer,
            ok,
            ms: ms(elapsed),
            detail: cap_owned(detail, MAX_LAYER_DETAIL),
        });
    }

    /// The report; `detail` and `hint` are capped at [`MAX_DETAIL`].
    pub(super) fn finish(
        self,
        target: &Target,
        cause: Option<Cause>,
        detail: String,
    ) -> ProbeReport {
        let status = cause.map_or(Status::Up, Cause::status);
        let host = cap(&target.host_str, MAX_URL);
        let hint = cause.map(|c| {
            let mut h = hint(
                c,
                &HintFacts {
                    host: &host,
                    port: target.port,
                    addr: self.addr,
                    http_status: self.http_status,
                    source: None,
                    sign: self.sign,
                },
            );
            if c == Cause::HttpBlocked
                && let Some(local) = self.local
            {
                h.push_str(&format!(" (it connects from {local})"));
            }
            cap_owned(h, MAX_DETAIL)
        });
        ProbeReport {
            status,
            cause,
            detail: cap_owned(detail, MAX_DETAIL),
            hint,
            layers: self.layers,
            started_at: self.started_at,
            ms: ms(self.started.elapsed()),
            addr: self.addr,
            http_status: self.http_status,
            cert: self.cert,
            domain: None,
        }
    }
}

/// One hop: DNS, TCP, then the upper layers.
pub(super) async fn hop(
    walk: &mut Walk<'_>,
    target: &Target,
    deps: &ProbeDeps,
    deadline: Instant,
) -> Result<Hop, ProbeError> {
    let site = walk.site;
    // DNS
    let ips: Vec<IpAddr> = match &target.host {
        Host::Ip(ip) => vec![*ip],
        Host::Name(name) => {
            let resolver = deps
                .resolvers
                .get(&site.expect.resolvers)
                .map_err(ProbeError::Setup)?;
            let shown = cap(name, MAX_URL);
            let t = Instant::now();
            // Boxed: the resolver's future is large, and address-literal
            // probes (the bulk of plain TCP checks) should not carry it.
            match tokio::time::timeout_at(deadline, Box::pin(dns::lookup(resolver, name))).await {
                Err(_) => {
                    let took = t.elapsed();
                    let what = format!("no DNS answer for {shown} within {} ms", took.as_millis());
                    walk.layer(Layer::Dns, false, took, what.clone());
                    return Ok(Hop::Done(Some(Cause::DnsTimeout), what));
                }
                Ok(Err(e)) => {
                    let took = t.elapsed();
                    let (cause, what) = dns::classify(&e);
                    let what = cap(&what, MAX_SHOWN);
                    walk.layer(Layer::Dns, false, took, format!("{shown}: {what}"));
                    return Ok(Hop::Done(
                        Some(cause),
                        format!("resolving {shown} failed: {what}"),
                    ));
                }
                Ok(Ok(ips)) => {
                    let took = t.elapsed();
                    // The expected addresses are the site's own, not those of a redirect target.
                    if walk.hop == 0
                        && !site.expect.ips.is_empty()
                        && !ips.iter().any(|ip| site.expect.ips.contains(ip))
                    {
                        let what = format!(
                            "{shown} resolves to {}, none of the expected {}",
                            text::list(&ips, MAX_LISTED),
                            text::list(&site.expect.ips, MAX_LISTED)
                        );
                        walk.layer(Layer::Dns, false, took, what.clone());
                        return Ok(Hop::Done(Some(Cause::DnsUnexpectedAddress), what));
                    }
                    let (ips, left_out) = dns::per_family(ips, dns::MAX_ADDRS_PER_FAMILY);
                    let mut what = format!("{shown} → {}", text::list(&ips, ips.len()));
                    if left_out > 0 {
                        what.push_str(&format!(" and {left_out} more addresses not tried"));
                        walk.untried.get_or_insert(format!(
                            "{left_out} more addresses of {shown} not tried (at most {} of each family are)",
                            dns::MAX_ADDRS_PER_FAMILY
                        ));
                    }
                    walk.layer(Layer::Dns, true, took, what);
                    ips
                }
            }
        }
    };
    let addrs: Vec<SocketAddr> = ips
        .iter()
        .map(|&ip| SocketAddr::new(ip, target.port))
        .collect();

    // TCP: a single address needs no task set.
    let t = Instant::now();
    let (stream, addr, connect_time, connecting) = if addrs.len() == 1 {
        match tcp::connect_one(addrs[0], deadline).await {
            Ok((stream, took)) => (stream, addrs[0], took, None),
            Err(Err(local)) => return Err(local.into()),
            Err(Ok(attempt)) => return Ok(all_failed(walk, t.elapsed(), &[attempt])),
        }
    } else {
        let mut connecting = tcp::Connecting::start(&addrs, deadline);
        match connecting.first().await? {
            Some((stream, addr, took)) => (stream, addr, took, Some(connecting)),
            None => {
                let failures = connecting.failures().to_vec();
                return Ok(all_failed(walk, t.elapsed(), &failures));
            }
        }
    };
    walk.addr = Some(addr);
    if target.scheme.uses_http() {
        // Requests are small and the answer is wanted at once; the local
        // address is named in the hint if the site blocks the monitor.
        let _ = stream.set_nodelay(true);
        walk.local = stream.local_addr().ok().map(|a| a.ip());
    }
    walk.layer(
        Layer::Tcp,
        true,
        connect_time,
        format!("connected to {addr}"),
    );

    // The upper layers run on the winner while the other attempts finish.
    // A plain connect check is done once connected. Otherwise the upper
    // layers run boxed, so their TLS and HTTP state does not inflate every
    // probe task.
    let plain = target.scheme == Scheme::Tcp && site.expect.banner.is_none();
    let upper = async {
        if plain {
            drop(stream);
            Ok(Hop::Done(
                None,
                format!("connected to {addr} in {} ms", ms(walk.started.elapsed())),
            ))
        } else {
            Box::pin(upper_layers(walk, target, stream, addr, deps, deadline)).await
        }
    };
    let (outcome, others) = match connecting {
        Some(c) if site.expect.addresses == AddressMode::All => tokio::join!(upper, c.finish()),
        _ => (upper.await, Vec::new()),
    };
    let outcome = outcome?;
    if let Some(failing) = partial(&others) {
        walk.partial.get_or_insert(failing);
    }
    let skipped: Vec<String> = others
        .iter()
        .filter(|a| a.no_route_for_family)
        .map(|a| a.addr.ip().to_string())
        .collect();
    Ok(match outcome {
        Hop::Done(cause, detail) if !skipped.is_empty() => Hop::Done(
            cause,
            format!(
                "{detail} (skipped {}: this host has no route for that address family)",
                skipped.join(", ")
            ),
        ),
        other => other,
    })
}

/// What one connect attempt did, in words.
fn describe(a: &tcp::Attempt) -> String {
    let os = a
        .error
        .as_deref()
        .map(|e| format!(" ({e})"))
        .unwrap_or_default();
    match a.cause {
        None => format!("{} connected", a.addr),
        Some(Cause::TcpRefused) => format!("{} refused the connection", a.addr),
        Some(Cause::TcpTimeout) => format!(
            "{} did not answer within {} ms",
            a.addr,
            a.elapsed.as_millis()
        ),
        Some(Cause::TcpUnreachable) => format!("{} is unreachable{os}", a.addr),
        Some(other) => format!("{} failed: {}{os}", a.addr, other.words()),
    }
}

/// Describes failing non-winning addresses, if any count as failures.
fn partial(others: &[tcp::Attempt]) -> Option<String> {
    let failing: Vec<String> = others
        .iter()
        .filter(|a| a.cause.is_some() && !a.no_route_for_family)
        .map(describe)
        .collect();
    (!failing.is_empty()).then(|| {
        format!(
            "{} of the addresses fail{}: {}",
            failing.len(),
            if failing.len() == 1 { "s" } else { "" },
            failing.join("; ")
        )
    })
}

/// The hop's outcome when no address connected.
fn all_failed(walk: &mut Walk<'_>, took: Duration, attempts: &[tcp::Attempt]) -> Hop {
    let worst = tcp::worst_of(attempts);
    let cause = worst.and_then(|a| a.cause).unwrap_or(Cause::TcpTimeout);
    walk.addr = worst.map(|a| a.addr);
    let what: Vec<String> = attempts.iter().map(describe).collect();
    let detail = if attempts.len() == 1 {
        what[0].clone()
    } else {
        format!("every address failed: {}", what.join("; "))
    };
    walk.layer(Layer::Tcp, false, took, detail.clone());
    Hop::Done(Some(cause), detail)
}

/// TLS, then HTTP or a banner, on a connected stream.
async fn upper_layers(
    walk: &mut Walk<'_>,
    target: &Target,
    stream: tokio::net::TcpStream,
    addr: SocketAddr,
    deps: &ProbeDeps,
    deadline: Instant,
) -> Result<Hop, ProbeError> {
    let site = walk.site;
    if !target.scheme.uses_tls() {
        return Ok(answer::after_connect(walk, target, stream, addr, deadline).await);
    }
    let config = deps
        .tls
        .get(site.expect.ca_file.as_deref(), target.scheme.uses_http())
        .ok_or_else(|| {
            ProbeError::Setup(format!("no TLS configuration prepared for {}", site.name))
        })?;
    let server_name = match &target.host {
        Host::Ip(ip) => rustls::pki_types::ServerName::IpAddress((*ip).into()),
        Host::Name(name) => rustls::pki_types::ServerName::try_from(name.clone()).map_err(|e| {
            ProbeError::Setup(format!(
                "{} is not a valid TLS server name: {e}",
                cap(name, MAX_URL)
            ))
        })?,
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
    let t = Instant::now();
    match tokio::time::timeout_at(deadline, connector.connect(server_name, stream)).await {
        Err(_) => {
            let took = t.elapsed();
            let what = format!(
                "TLS handshake with {addr} did not finish within {} ms",
                took.as_millis()
            );
            walk.layer(Layer::Tls, false, took, what.clone());
            Ok(Hop::Done(Some(Cause::TlsTimeout), what))
        }
        Ok(Err(e)) => {
            let took = t.elapsed();
            let f = tls::classify(&e, &cap(&target.host_str, MAX_URL));
            walk.cert = f.cert;
            let what = format!("TLS handshake with {addr} failed: {}", f.what);
            walk.layer(Layer::Tls, false, took, what.clone());
            Ok(Hop::Done(Some(f.cause), what))
        }
        Ok(Ok(tls_stream)) => {
            let took = t.elapsed();
            let (_, conn) = tls_stream.get_ref();
            let version = match conn.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_string(),
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_string(),
                Some(v) => format!("{v:?}"),
                None => "TLS".to_string(),
            };
            let alpn = conn
                .alpn_protocol()
                .map(|p| format!(", ALPN {}", cap(&String::from_utf8_lossy(p), MAX_SHOWN)))
                .unwrap_or_default();
            let cert = conn
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| tls::cert_facts(leaf, SystemTime::now()));
            let facts = cert
                .as_ref()
                .map(|c| format!("; {}", tls::describe_valid(c)))
                .unwrap_or_default();
            walk.layer(Layer::Tls, true, took, format!("{version}{alpn}{facts}"));
            if let Some(c) = &cert
                && c.days_left < i64::from(site.expect.cert_warn_days)
            {
                walk.expiring.get_or_insert(format!(
                    "the certificate of {} expires in {} day{} (warning at {})",
                    cap(&target.host_str, MAX_URL),
                    c.days_left,
                    if c.days_left == 1 { "" } else { "s" },
                    site.expect.cert_warn_days
                ));
            }
            walk.cert = cert;
            Ok(answer::after_connect(walk, target, tls_stream, addr, deadline).await)
        }
    }
}
