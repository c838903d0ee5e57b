//! One probe of one site: walk DNS → TCP → TLS → HTTP the way a browser
//! does, time each layer, and stop at the first that fails; follow
//! redirects, walking every hop the same way.
//!
//! Sees only a [`SiteSpec`] and the shared [`ProbeDeps`] (resolvers, TLS
//! configurations); knows nothing of state, alerts or the store. A site that
//! is down is a [`ProbeReport`] like any other; `Err` means sitewatch itself
//! could not probe (no sockets, no resolver configuration).

pub mod dns;
pub mod http;
pub mod tcp;
pub mod tls;

use crate::config::{AddressMode, Host, Method, Scheme, SiteSpec, Target};
use crate::diagnosis::{Cause, HintFacts, Layer, Status, hint};
use serde::Serialize;
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
use tokio::time::Instant;

/// What one layer did.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct LayerReport {
    /// Which layer.
    pub layer: Layer,
    /// Whether it succeeded.
    pub ok: bool,
    /// Elapsed milliseconds, from the moment the layer really began.
    pub ms: f64,
    /// The facts of this layer (addresses, protocol, status).
    pub detail: String,
}

/// The result of one probe, in the shape of the diagnosis contract.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeReport {
    /// up, degraded or down.
    pub status: Status,
    /// Why, when not up.
    pub cause: Option<Cause>,
    /// One sentence with the facts.
    pub detail: String,
    /// One sentence: what to check first (absent when up).
    pub hint: Option<String>,
    /// Every layer attempted, in order (several hops when redirected).
    pub layers: Vec<LayerReport>,
    /// Wall-clock start of the probe.
    #[serde(with = "crate::timefmt")]
    pub started_at: SystemTime,
    /// Whole probe duration in milliseconds.
    pub ms: f64,
    /// The address the result is about (the one used, or the one that failed worst).
    pub addr: Option<SocketAddr>,
    /// The HTTP status received last, if any.
    pub http_status: Option<u16>,
    /// The leaf certificate presented last, if any.
    pub cert: Option<tls::CertFacts>,
}

/// sitewatch could not probe at all: its own failure, not the site's.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No socket or local port could be had.
    #[error(transparent)]
    Local(#[from] tcp::LocalError),
    /// The resolvers or TLS configuration for this site are missing.
    #[error("{0}")]
    Setup(String),
}

/// Shared, read-only things probes need: built once per configuration.
pub struct ProbeDeps {
    /// DNS resolvers.
    pub resolvers: dns::Resolvers,
    /// TLS client configurations.
    pub tls: tls::TlsClients,
}

/// The dependencies could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    /// A resolver could not be built.
    #[error(transparent)]
    Dns(#[from] dns::BuildError),
    /// A TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] tls::BuildError),
}

impl ProbeDeps {
    /// Builds the resolvers and TLS configurations `sites` need. Redirects
    /// may lead anywhere, so HTTP sites always get the system resolver and
    /// an HTTPS configuration.
    pub fn new<'a>(
        sites: impl IntoIterator<Item = &'a SiteSpec> + Clone,
    ) -> Result<ProbeDeps, DepsError> {
        let need_system = sites.clone().into_iter().any(|s| {
            (matches!(s.target.host, Host::Name(_)) && s.expect.resolvers.is_empty())
                || (s.target.scheme.uses_http() && s.http.max_redirects > 0)
        });
        let resolvers = dns::Resolvers::new(
            need_system,
            sites
                .clone()
                .into_iter()
                .map(|s| s.expect.resolvers.as_slice()),
        )?;
        let mut tls = tls::TlsClients::new();
        for site in sites {
            if site.target.scheme.uses_tls()
                || (site.target.scheme.uses_http() && site.http.max_redirects > 0)
            {
                tls.prepare(
                    site.expect.ca_file.as_deref(),
                    site.target.scheme.uses_http(),
                )?;
            }
        }
        Ok(ProbeDeps { resolvers, tls })
    }
}

/// Collects layer reports and what the walk found on the way.
struct Walk<'a> {
    site: &'a SiteSpec,
    started: Instant,
    started_at: SystemTime,
    layers: Vec<LayerReport>,
    hop: u32,
    addr: Option<SocketAddr>,
    local: Option<IpAddr>,
    http_status: Option<u16>,
    cert: Option<tls::CertFacts>,
    /// Degraded findings that count only if nothing worse is found.
    partial: Option<String>,
    expiring: Option<String>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// How one hop ended.
enum Hop {
    /// The walk is over: the cause (if any) and the detail sentence.
    Done(Option<Cause>, String),
    /// The server redirects: follow `location` (already absolute).
    Redirect(String, u16),
}

impl Walk<'_> {
    fn layer(&mut self, layer: Layer, ok: bool, elapsed: Duration, detail: String) {
        let detail = if self.hop == 0 {
            detail
        } else {
            format!("redirect {}: {detail}", self.hop)
        };
        self.layers.push(LayerReport {
            layer,
            ok,
            ms: ms(elapsed),
            detail,
        });
    }

    fn finish(self, target: &Target, cause: Option<Cause>, detail: String) -> ProbeReport {
        let status = cause.map_or(Status::Up, Cause::status);
        let hint = cause.map(|c| {
            let mut h = hint(
                c,
                &HintFacts {
                    host: &target.host_str,
                    port: target.port,
                    addr: self.addr,
                    http_status: self.http_status,
                },
            );
            if c == Cause::HttpBlocked
                && let Some(local) = self.local
            {
                h.push_str(&format!(" (it connects from {local})"));
            }
            h
        });
        ProbeReport {
            status,
            cause,
            detail,
            hint,
            layers: self.layers,
            started_at: self.started_at,
            ms: ms(self.started.elapsed()),
            addr: self.addr,
            http_status: self.http_status,
            cert: self.cert,
        }
    }
}

fn list(addrs: &[IpAddr]) -> String {
    addrs
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Probes `site` once, within its timeout.
pub async fn run(site: &SiteSpec, deps: &ProbeDeps) -> Result<ProbeReport, ProbeError> {
    run_until(site, deps, Instant::now() + site.timeout).await
}

/// Probes `site` once, giving up at `deadline` (the scheduler ends a probe
/// before the site's next slot even when it started late).
pub async fn run_until(
    site: &SiteSpec,
    deps: &ProbeDeps,
    deadline: Instant,
) -> Result<ProbeReport, ProbeError> {
    let started = Instant::now();
    let mut walk = Walk {
        site,
        started,
        started_at: SystemTime::now(),
        layers: Vec::with_capacity(4),
        hop: 0,
        addr: None,
        local: None,
        http_status: None,
        cert: None,
        partial: None,
        expiring: None,
    };
    let mut target = Cow::Borrowed(&site.target);
    let mut chain: Vec<String> = Vec::new();
    loop {
        let (cause, detail) = match walk_hop(&mut walk, &target, deps, deadline).await? {
            Hop::Done(cause, detail) => (cause, detail),
            Hop::Redirect(next, status) => {
                chain.push(target.url.clone());
                let path = || format!("{} → {next}", chain.join(" → "));
                let stop = if chain.contains(&next) {
                    Some(format!("redirect loop: {}", path()))
                } else if walk.hop >= site.http.max_redirects {
                    Some(format!(
                        "more than {} redirects: {}",
                        site.http.max_redirects,
                        path()
                    ))
                } else {
                    match crate::config::parse_target(&next) {
                        Ok(t) if t.scheme.uses_http() => {
                            target = Cow::Owned(t);
                            walk.hop += 1;
                            None
                        }
                        Ok(_) | Err(_) => Some(format!(
                            "{} redirects ({status}) to {next}, which is not an http(s) URL",
                            chain.last().map_or("", String::as_str)
                        )),
                    }
                };
                match stop {
                    Some(what) => (Some(Cause::HttpRedirects), what),
                    None => continue,
                }
            }
        };
        // A down cause explains more than any degraded finding on the way.
        let cause_is_down = cause.is_some_and(|c| c.status() == Status::Down);
        let report = if cause_is_down {
            walk.finish(&target, cause, detail)
        } else if let Some(partial) = walk.partial.take() {
            walk.finish(
                &target,
                Some(Cause::TcpPartial),
                format!("{detail}; but {partial}"),
            )
        } else if let Some(expiring) = walk.expiring.take() {
            walk.finish(
                &target,
                Some(Cause::TlsExpiring),
                format!("{detail}; but {expiring}"),
            )
        } else {
            let detail = if chain.is_empty() {
                detail
            } else {
                format!(
                    "{detail} after {} redirect{} ({} → {})",
                    chain.len(),
                    if chain.len() == 1 { "" } else { "s" },
                    chain.join(" → "),
                    target.url
                )
            };
            walk.finish(&target, cause, detail)
        };
        return Ok(report);
    }
}

/// One hop: DNS, TCP, then the upper layers.
async fn walk_hop(
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
            let t = Instant::now();
            // Boxed: the resolver's future is large, and address-literal
            // probes (the bulk of plain TCP checks) should not carry it.
            match tokio::time::timeout_at(deadline, Box::pin(dns::lookup(resolver, name))).await {
                Err(_) => {
                    let took = t.elapsed();
                    let what = format!("no DNS answer for {name} within {} ms", took.as_millis());
                    walk.layer(Layer::Dns, false, took, what.clone());
                    return Ok(Hop::Done(Some(Cause::DnsTimeout), what));
                }
                Ok(Err(e)) => {
                    let took = t.elapsed();
                    let (cause, what) = dns::classify(&e);
                    walk.layer(Layer::Dns, false, took, format!("{name}: {what}"));
                    return Ok(Hop::Done(
                        Some(cause),
                        format!("resolving {name} failed: {what}"),
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
                            "{name} resolves to {}, none of the expected {}",
                            list(&ips),
                            list(&site.expect.ips)
                        );
                        walk.layer(Layer::Dns, false, took, what.clone());
                        return Ok(Hop::Done(Some(Cause::DnsUnexpectedAddress), what));
                    }
                    walk.layer(Layer::Dns, true, took, format!("{name} → {}", list(&ips)));
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
        return Ok(after_connect(walk, target, stream, addr, deadline).await);
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
            ProbeError::Setup(format!("{name} is not a valid TLS server name: {e}"))
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
            let f = tls::classify(&e, &target.host_str);
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
                .map(|p| format!(", ALPN {}", String::from_utf8_lossy(p)))
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
                    target.host_str,
                    c.days_left,
                    if c.days_left == 1 { "" } else { "s" },
                    site.expect.cert_warn_days
                ));
            }
            walk.cert = cert;
            Ok(after_connect(walk, target, tls_stream, addr, deadline).await)
        }
    }
}

/// The top layer: HTTP for http(s), a banner check or nothing for tcp/tls.
async fn after_connect<S>(
    walk: &mut Walk<'_>,
    target: &Target,
    io: S,
    addr: SocketAddr,
    deadline: Instant,
) -> Hop
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let site = walk.site;
    if !target.scheme.uses_http() {
        let Some(expected) = &site.expect.banner else {
            let total = walk.started.elapsed();
            return Hop::Done(None, format!("connected to {addr} in {} ms", ms(total)));
        };
        return banner(walk, io, addr, expected, deadline).await;
    }
    let opts = &site.http;
    let checks_body = site.expect.body.is_some() || site.expect.forbid_body.is_some();
    let follows = opts.max_redirects > 0;
    let wants_body = |status: u16| {
        let redirect = follows && (300..400).contains(&status);
        opts.method == Method::Get
            && !redirect
            && (checks_body || (opts.app_errors && (200..300).contains(&status)))
    };
    let t = Instant::now();
    let resp = match http::request(io, target, opts, wants_body, deadline).await {
        Err(f) => {
            walk.layer(Layer::Http, false, t.elapsed(), f.what.clone());
            return Hop::Done(
                Some(f.cause),
                format!("{} from {addr}: {}", target.url, f.what),
            );
        }
        Ok(resp) => resp,
    };
    let took = t.elapsed();
    walk.http_status = Some(resp.status);
    let head = format!(
        "HTTP {} in {} ms (first byte after {} ms)",
        resp.status,
        ms(took),
        ms(resp.ttfb)
    );
    if follows
        && (300..400).contains(&resp.status)
        && let Some(location) = &resp.location
    {
        let next = url::Url::parse(&target.url).and_then(|base| base.join(location));
        walk.layer(
            Layer::Http,
            true,
            took,
            format!("{head}, redirect to {location}"),
        );
        return match next {
            Ok(next) => Hop::Redirect(next.to_string(), resp.status),
            Err(e) => Hop::Done(
                Some(Cause::HttpRedirects),
                format!(
                    "{} redirects ({}) to an invalid location \"{location}\": {e}",
                    target.url, resp.status
                ),
            ),
        };
    }
    if let Some(cause) = http::classify_status(resp.status, &site.expect.status) {
        walk.layer(Layer::Http, false, took, head);
        return Hop::Done(
            Some(cause),
            format!(
                "{} answered {} from {addr}; accepted: {}",
                target.url, resp.status, site.expect.status
            ),
        );
    }
    if let Some(body) = &resp.body {
        let size = if resp.truncated {
            format!("first {} KiB", body.len() / 1024)
        } else {
            format!("{} bytes", body.len())
        };
        if let Some(text) = &site.expect.body
            && !contains(body, text.as_bytes())
        {
            walk.layer(Layer::Http, false, took, head);
            return Hop::Done(
                Some(Cause::HttpContent),
                format!(
                    "{} answered {} but the body ({size}) lacks \"{text}\"",
                    target.url, resp.status
                ),
            );
        }
        if let Some(text) = &site.expect.forbid_body
            && contains(body, text.as_bytes())
        {
            walk.layer(Layer::Http, false, took, head);
            return Hop::Done(
                Some(Cause::HttpContent),
                format!(
                    "{} answered {} but the body ({size}) holds the forbidden \"{text}\"",
                    target.url, resp.status
                ),
            );
        }
        if opts.app_errors
            && (200..300).contains(&resp.status)
            && let Some(error) = http::app_error(body, resp.content_type.as_deref())
        {
            walk.layer(Layer::Http, false, took, head);
            return Hop::Done(
                Some(Cause::HttpAppError),
                format!(
                    "{} answered {} but the page is an application error: {error}",
                    target.url, resp.status
                ),
            );
        }
    }
    walk.layer(Layer::Http, true, took, head);
    let total = walk.started.elapsed();
    if let Some(slow) = site.expect.slow
        && total > slow
    {
        return Hop::Done(
            Some(Cause::HttpSlow),
            format!(
                "{} answered {} in {} ms, slower than {} ms",
                target.url,
                resp.status,
                ms(total),
                slow.as_millis()
            ),
        );
    }
    Hop::Done(
        None,
        format!("HTTP {} from {addr} in {} ms", resp.status, ms(total)),
    )
}

/// Reads the server's first line and checks it holds `expected`.
async fn banner<S>(
    walk: &mut Walk<'_>,
    io: S,
    addr: SocketAddr,
    expected: &str,
    deadline: Instant,
) -> Hop
where
    S: AsyncRead + Unpin,
{
    const MAX_LINE: u64 = 1024;
    let t = Instant::now();
    let mut line = Vec::new();
    let mut reader = tokio::io::AsyncReadExt::take(BufReader::new(io), MAX_LINE);
    let read = tokio::time::timeout_at(deadline, reader.read_until(b'\n', &mut line)).await;
    let took = t.elapsed();
    let text = String::from_utf8_lossy(&line).trim_end().to_string();
    let what = match read {
        Err(_) => format!("no banner from {addr} within {} ms", took.as_millis()),
        Ok(Err(e)) => format!("reading the banner from {addr} failed: {e}"),
        Ok(Ok(0)) => format!("{addr} closed the connection without a banner"),
        Ok(Ok(_)) if text.contains(expected) => {
            walk.layer(Layer::Tcp, true, took, format!("banner: {text}"));
            return Hop::Done(None, format!("{addr} greeted with \"{text}\""));
        }
        Ok(Ok(_)) => format!("{addr} greeted with \"{text}\", expected \"{expected}\""),
    };
    walk.layer(Layer::Tcp, false, took, what.clone());
    Hop::Done(Some(Cause::TcpBanner), what)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
