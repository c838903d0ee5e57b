//! The diagnosis vocabulary: [`Status`], [`Layer`] and [`Cause`], with the
//! words and hints an operator reads in alerts, on `/status` and in
//! `sitewatch check`.
//!
//! Owns the stable cause codes of the diagnosis contract (DIAGNOSIS.md) and
//! the sentence that tells an operator what to check first. Pure: no I/O,
//! no tokio, no clock.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;

/// How a site is doing, as the contract names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Everything the site is expected to do works.
    Up,
    /// It works, but something needs attention soon (slow, certificate expiring, one address dead).
    Degraded,
    /// Visitors cannot use it.
    Down,
}

impl Status {
    /// The contract's word for this status.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Up => "up",
            Status::Degraded => "degraded",
            Status::Down => "down",
        }
    }

    /// The Nagios/Icinga plugin exit code: 0 OK, 1 WARNING, 2 CRITICAL.
    pub fn nagios_code(self) -> i32 {
        match self {
            Status::Up => 0,
            Status::Degraded => 1,
            Status::Down => 2,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A layer of the walk a browser makes to reach a site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// Name resolution.
    Dns,
    /// TCP connect (and, for plain TCP checks, the banner).
    Tcp,
    /// The TLS handshake and certificate checks.
    Tls,
    /// Request, response head and body checks.
    Http,
    /// The vote of several monitors (vantages) on one site.
    Vantage,
    /// The pings of a job (cron, backup, timer) that must report on schedule.
    Heartbeat,
    /// The site's recent probes taken together (failures too scattered to confirm).
    Site,
    /// The domain's registration (RDAP).
    Domain,
}

impl Layer {
    /// The contract's name of this layer.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Dns => "dns",
            Layer::Tcp => "tcp",
            Layer::Tls => "tls",
            Layer::Http => "http",
            Layer::Heartbeat => "heartbeat",
            Layer::Vantage => "vantage",
            Layer::Site => "site",
            Layer::Domain => "domain",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! causes {
    ($( $variant:ident = $code:literal, $status:ident, $layer:ident, $words:literal; )*) => {
        /// Why a probe did not find the site up: one code of the diagnosis
        /// contract. Codes are stable identifiers: never rename one, only add.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Cause {
            $(
                #[doc = $words]
                #[serde(rename = $code)]
                $variant,
            )*
        }

        impl Cause {
            /// Every cause of the contract, in its order.
            pub const ALL: &'static [Cause] = &[$(Cause::$variant),*];

            /// The stable code, e.g. `tcp.refused`.
            pub fn as_str(self) -> &'static str {
                match self { $(Cause::$variant => $code),* }
            }

            /// The status a probe with this cause reports.
            pub fn status(self) -> Status {
                match self { $(Cause::$variant => Status::$status),* }
            }

            /// The layer where this cause is found.
            pub fn layer(self) -> Layer {
                match self { $(Cause::$variant => Layer::$layer),* }
            }

            /// The cause in a few plain words, for subjects and the status page.
            pub fn words(self) -> &'static str {
                match self { $(Cause::$variant => $words),* }
            }

            /// Parses a stable code back into a cause.
            pub fn from_code(code: &str) -> Option<Cause> {
                match code { $($code => Some(Cause::$variant),)* _ => None }
            }
        }
    };
}

causes! {
    DnsNxdomain = "dns.nxdomain", Down, Dns, "the name does not exist";
    DnsNoAddress = "dns.no_address", Down, Dns, "the name has no address";
    DnsServfail = "dns.servfail", Down, Dns, "DNS server failure";
    DnsError = "dns.error", Down, Dns, "DNS error";
    DnsTimeout = "dns.timeout", Down, Dns, "DNS timeout";
    DnsUnexpectedAddress = "dns.unexpected_address", Down, Dns, "DNS points at the wrong address";
    TcpRefused = "tcp.refused", Down, Tcp, "connection refused";
    TcpTimeout = "tcp.timeout", Down, Tcp, "connection timed out";
    TcpUnreachable = "tcp.unreachable", Down, Tcp, "host unreachable";
    TcpPartial = "tcp.partial", Degraded, Tcp, "some addresses fail";
    TlsTimeout = "tls.timeout", Down, Tls, "TLS handshake timed out";
    TlsHandshake = "tls.handshake", Down, Tls, "TLS handshake failed";
    TlsExpired = "tls.expired", Down, Tls, "certificate expired";
    TlsNotYetValid = "tls.not_yet_valid", Down, Tls, "certificate not yet valid";
    TlsHostname = "tls.hostname", Down, Tls, "certificate name mismatch";
    TlsUntrusted = "tls.untrusted", Down, Tls, "certificate not trusted";
    TlsExpiring = "tls.expiring", Degraded, Tls, "certificate expires soon";
    HttpTimeout = "http.timeout", Down, Http, "no HTTP response in time";
    HttpEmpty = "http.empty", Down, Http, "connection closed without a response";
    HttpProtocol = "http.protocol", Down, Http, "not a valid HTTP response";
    HttpBadGateway = "http.bad_gateway", Down, Http, "bad gateway (502)";
    HttpUnavailable = "http.unavailable", Down, Http, "service unavailable (503)";
    HttpGatewayTimeout = "http.gateway_timeout", Down, Http, "gateway timeout (504)";
    HttpBlocked = "http.blocked", Down, Http, "the monitor is blocked";
    HttpStatus = "http.status", Down, Http, "unexpected HTTP status";
    HttpRedirects = "http.redirects", Down, Http, "too many redirects";
    HttpContent = "http.content", Down, Http, "expected content missing";
    HttpAppError = "http.app_error", Down, Http, "application error page";
    HttpSlow = "http.slow", Degraded, Http, "slow response";
    TcpBanner = "tcp.banner", Down, Tcp, "unexpected banner";
    VantagePartial = "vantage.partial", Degraded, Vantage, "fails from some vantages only";
    HeartbeatMissed = "heartbeat.missed", Down, Heartbeat, "the job did not ping in time";
    HeartbeatFailed = "heartbeat.failed", Down, Heartbeat, "the job reported failure";
    HeartbeatOverrun = "heartbeat.overrun", Down, Heartbeat, "the job started and did not finish";
    HeartbeatTooFast = "heartbeat.too_fast", Degraded, Heartbeat, "the job finished suspiciously fast";
    HeartbeatLate = "heartbeat.late", Degraded, Heartbeat, "the job is late";
    HttpOriginDown = "http.origin_down", Down, Http, "the CDN cannot reach the origin";
    HttpOriginTls = "http.origin_tls", Down, Http, "TLS between the CDN and the origin fails";
    HttpMaintenance = "http.maintenance", Down, Http, "the site is in maintenance mode";
    HttpPhpSource = "http.php_source", Down, Http, "PHP source code is served";
    HttpInsecureRedirect = "http.insecure_redirect", Degraded, Http, "redirects from https to plain http";
    HttpOffsiteRedirect = "http.offsite_redirect", Degraded, Http, "redirects to another domain";
    SiteIntermittent = "site.intermittent", Degraded, Site, "fails now and then";
    DomainExpiring = "domain.expiring", Degraded, Domain, "the domain registration expires soon";
    DomainExpired = "domain.expired", Down, Domain, "the domain registration has expired";
}

/// Which face of a cause a probe found, when a cause has several and each
/// calls for a different first check (the application error a page shows,
/// a response whose body stalled after its head).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sign {
    /// WordPress: "Error establishing a database connection".
    WpDatabase,
    /// WordPress: "There has been a critical error on this website".
    WpCritical,
    /// A PHP fatal error printed into the page.
    PhpFatal,
    /// A PHP parse error printed into the page.
    PhpParse,
    /// An HTML response with nothing in its body (a white screen).
    BlankPage,
    /// A redirect to WordPress's installer: it cannot find its tables.
    WpInstall,
    /// The web server's own default page instead of the site.
    DefaultPage,
    /// WordPress's "Briefly unavailable for scheduled maintenance" page (a
    /// `.maintenance` file left by an update).
    WpMaintenance,
    /// The response head came, then its body stopped coming.
    BodyStalled,
}

impl Sign {
    /// Every sign, in order.
    pub const ALL: &'static [Sign] = &[
        Sign::WpDatabase,
        Sign::WpCritical,
        Sign::PhpFatal,
        Sign::PhpParse,
        Sign::BlankPage,
        Sign::WpInstall,
        Sign::DefaultPage,
        Sign::WpMaintenance,
        Sign::BodyStalled,
    ];

    /// A short stable name, e.g. `wp_install`.
    pub fn as_str(self) -> &'static str {
        match self {
            Sign::WpDatabase => "wp_database",
            Sign::WpCritical => "wp_critical",
            Sign::PhpFatal => "php_fatal",
            Sign::PhpParse => "php_parse",
            Sign::BlankPage => "blank_page",
            Sign::WpInstall => "wp_install",
            Sign::DefaultPage => "default_page",
            Sign::WpMaintenance => "wp_maintenance",
            Sign::BodyStalled => "body_stalled",
        }
    }

    /// The cause this is a face of.
    pub fn cause(self) -> Cause {
        match self {
            Sign::WpDatabase
            | Sign::WpCritical
            | Sign::PhpFatal
            | Sign::PhpParse
            | Sign::BlankPage
            | Sign::WpInstall
            | Sign::DefaultPage => Cause::HttpAppError,
            Sign::WpMaintenance => Cause::HttpMaintenance,
            Sign::BodyStalled => Cause::HttpTimeout,
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The facts a hint may name: what was probed and, when known, the address
/// the failing attempt used.
#[derive(Clone, Copy, Debug)]
pub struct HintFacts<'a> {
    /// The host name (or address literal) of the site.
    pub host: &'a str,
    /// The port probed.
    pub port: u16,
    /// The address of the failing attempt, when one was reached.
    pub addr: Option<SocketAddr>,
    /// The HTTP status, when one was received.
    pub http_status: Option<u16>,
    /// This monitor's own address towards the site, when known (the one a
    /// firewall there would block).
    pub source: Option<std::net::IpAddr>,
    /// The face of the cause found, when it has several (see [`Sign`]).
    pub sign: Option<Sign>,
}

impl HintFacts<'_> {
    fn target(&self) -> String {
        match self.addr {
            Some(addr) => addr.to_string(),
            None => format!("{}:{}", self.host, self.port),
        }
    }
}

/// One sentence telling a tired operator what to check first.
pub fn hint(cause: Cause, facts: &HintFacts<'_>) -> String {
    let host = facts.host;
    let port = facts.port;
    let target = facts.target();
    if let Some(sign) = facts.sign.filter(|s| s.cause() == cause) {
        return sign_hint(sign, facts);
    }
    match cause {
        Cause::DnsNxdomain => format!(
            "the name {host} does not exist in DNS: check the record at your DNS provider and that the domain has not expired (`dig {host}`)"
        ),
        Cause::DnsNoAddress => format!(
            "{host} exists but has no A or AAAA record: add the address record at your DNS provider (`dig {host} A`, `dig {host} AAAA`)"
        ),
        Cause::DnsServfail => format!(
            "the resolver could not resolve {host} (SERVFAIL): often broken DNSSEC or unreachable authoritative servers; try `dig +cd {host}` and check the zone's nameservers"
        ),
        Cause::DnsError => format!(
            "the resolver refused or rejected the query for {host}: check the resolvers sitewatch uses (`resolvers` in sites.toml, or /etc/resolv.conf)"
        ),
        Cause::DnsTimeout => format!(
            "no DNS answer for {host} in time: check that this host reaches its resolver (`dig {host}`), then the domain's nameservers"
        ),
        Cause::DnsUnexpectedAddress => format!(
            "DNS for {host} does not point at the expected server: the record still points at an old server or was changed; check it at your DNS provider (`dig {host}`)"
        ),
        Cause::TcpRefused => format!(
            "nothing is listening on {target}: is the web server running? `systemctl status nginx`, then `nginx -t`; or a firewall rejects port {port}"
        ),
        Cause::TcpTimeout => format!(
            "packets to {target} are dropped: a firewall, a host that is gone, or this monitor's IP blocked; test from another network and check the firewall rules"
        ),
        Cause::TcpUnreachable => format!(
            "{target} is unreachable: no route to it, or a router or firewall answered host-unreachable/admin-prohibited; check the host is up and the routes and firewall rules (`ip route get`, `traceroute`)"
        ),
        Cause::TcpPartial => format!(
            "some addresses of {host} fail while others work: visitors sent to a dead one see the site down; fix that server or remove its address from DNS"
        ),
        Cause::TlsTimeout => format!(
            "TCP connected to {target} but the TLS handshake never finished: the server is overloaded, or what listens on port {port} does not speak TLS"
        ),
        Cause::TlsHandshake => format!(
            "the TLS handshake with {target} failed: check that port {port} serves TLS and the server's protocol and cipher settings (`openssl s_client -connect {target} -servername {host}`)"
        ),
        Cause::TlsExpired => format!(
            "the certificate for {host} has expired: renew it (`certbot renew`) and reload the web server"
        ),
        Cause::TlsNotYetValid => format!(
            "the certificate for {host} is not valid yet: check the server's clock and the certificate's start date"
        ),
        Cause::TlsHostname => format!(
            "the certificate does not cover {host}: reissue it with {host} among its names, or check that the web server serves the right certificate for this name"
        ),
        Cause::TlsUntrusted => format!(
            "the certificate chain for {host} does not lead to a trusted root: install the full chain (fullchain.pem, with intermediates), or set `ca_file` for an internal CA"
        ),
        Cause::TlsExpiring => format!(
            "the certificate for {host} expires soon: renew it now (`certbot renew`) and check that automatic renewal runs"
        ),
        Cause::HttpTimeout => format!(
            "{host} accepted the connection but sent no response in time: the web server or application hangs; check its load and error log"
        ),
        Cause::HttpEmpty => format!(
            "{host} closed the connection without a response: the web server or a proxy crashed or dropped the request; check the error log"
        ),
        Cause::HttpProtocol => format!(
            "what answers on {target} does not speak valid HTTP: is port {port} the right service, or does it expect TLS (https://)?"
        ),
        Cause::HttpBadGateway => {
            "the web server is up but its upstream is not: check PHP-FPM or the app server (`systemctl status php*-fpm`) and the web server's error log".to_string()
        }
        Cause::HttpUnavailable => format!(
            "{host} answers 503: maintenance mode, an overloaded application, or no healthy backend behind the proxy; check the application and the load balancer"
        ),
        Cause::HttpGatewayTimeout => {
            "the upstream did not answer the web server in time (504): the application or its database is slow or stuck; check them and their logs".to_string()
        }
        Cause::HttpBlocked => format!(
            "{host} refuses the monitor ({}): a firewall, security plugin (Wordfence, fail2ban, a WAF) or rate limit blocks it; check its blocked-IP list and allowlist this monitor's address",
            facts
                .http_status
                .map_or_else(|| "403/429".to_string(), |s| s.to_string())
        ),
        Cause::HttpStatus => format!(
            "{host} answered an unexpected status{}: check the application's log, or add the status to `expect_status` if it is right",
            facts
                .http_status
                .map_or_else(String::new, |s| format!(" ({s})"))
        ),
        Cause::HttpRedirects => {
            "the redirects do not end: check the redirect rules (http to https, www to bare name) in the web server and the application".to_string()
        }
        Cause::HttpContent => format!(
            "the page of {host} does not look as expected (the expected text is missing or the forbidden text is there): it may show an error, a maintenance page or another site; open it in a browser"
        ),
        Cause::HttpAppError => {
            "the site shows an application error with a success status: check the database server (`systemctl status mysql`), the PHP error log and recent plugin or theme updates".to_string()
        }
        Cause::HttpSlow => format!(
            "{host} works but answers slowly: check the server's load, the database and caching"
        ),
        Cause::TcpBanner => format!(
            "the service on {target} did not greet as expected: check which service listens on port {port}"
        ),
        Cause::VantagePartial => {
            let mine = facts
                .source
                .map_or_else(|| "this monitor's address".to_string(), |ip| ip.to_string());
            format!(
                "{host} fails from some monitors and works from others: if this monitor is refused or timed out while others reach it, its address is likely blocked there (fail2ban, CSF, Wordfence, a CDN or WAF rule: check the site's ban lists and firewall for {mine}), or a route between the two networks is broken (`mtr {host}` from here)"
            )
        }
        Cause::HeartbeatMissed => format!(
            "the job behind {host} did not run, or ran and could not reach sitewatch: check its timer or crontab (`systemctl list-timers`, `crontab -l`) and its log on the host that runs it, then that this host reaches the ping URL (`curl -fsS` it by hand)"
        ),
        Cause::HeartbeatFailed => format!(
            "the job behind {host} ran and reported failure: read its output above and its log, then run it by hand on its host to see the error"
        ),
        Cause::HeartbeatOverrun => format!(
            "the job behind {host} started and has not finished within its `max_runtime`: it hangs or is far slower than usual (a lock, a full disk, a slow database or network); check whether it still runs (`ps`, `systemctl status`)"
        ),
        Cause::HeartbeatTooFast => format!(
            "the job behind {host} finished faster than its `min_runtime`: it may have done nothing (an empty backup, a wrong path, an early exit with status 0); check its output and what it produced"
        ),
        Cause::HeartbeatLate => format!(
            "the job behind {host} has not pinged at its expected time but is still inside its grace: it may have started late or be running long; check that it runs"
        ),
        Cause::HttpOriginDown => format!(
            "the CDN or proxy in front of {host} answers, but it cannot reach the origin server behind it: check that the web server on the origin runs and listens (`systemctl status nginx`), and that the origin's firewall lets the CDN's addresses in; then ask the origin directly (`curl -v --resolve {host}:{port}:ORIGIN_IP {scheme}://{host}/`)",
            scheme = if port == 80 { "http" } else { "https" }
        ),
        Cause::HttpOriginTls => format!(
            "the CDN in front of {host} cannot make a valid TLS connection to the origin: check the origin's certificate (expired, self-signed or without {host}) and that the origin serves TLS on 443 (`openssl s_client -connect ORIGIN_IP:443 -servername {host}`); in a strict mode the origin needs a valid or CDN-issued origin certificate"
        ),
        Cause::HttpMaintenance => format!(
            "{host} declares maintenance: if nobody is working on it, an update or deploy stopped half-way; check the application's maintenance mode (a plugin, a flag file, `wp maintenance-mode status`) and finish or undo the update"
        ),
        Cause::HttpPhpSource => format!(
            "{host} serves PHP source code instead of running it: PHP is not wired into the web server for this site (the PHP-FPM handler or socket is missing from its configuration), so anyone can download wp-config.php and other files with passwords; fix the handler now, and change the database password if the file was exposed"
        ),
        Cause::HttpInsecureRedirect => format!(
            "{host} sends visitors from https to plain http: they lose encryption and browsers warn; fix the redirect rule in the web server or the application's own URL setting (WordPress: `home` and `siteurl` must start with https://)"
        ),
        Cause::HttpOffsiteRedirect => format!(
            "{host} sends visitors to another domain: if nobody meant it, the domain may have lapsed to a parking page or the site was hacked (look for injected redirects in .htaccess, the web server's rules and the database); if it is intended, add the destination to `allow_redirects_to`"
        ),
        Cause::SiteIntermittent => format!(
            "{host} fails now and then without staying down: visitors see errors some of the time; look at the causes counted in the detail, then at the server's error log, load and memory (a crashing worker, an exhausted PHP-FPM pool, one bad backend behind a balancer)"
        ),
        Cause::DomainExpiring => format!(
            "the registration of the domain of {host} expires soon: renew it at the registrar and check that auto-renewal and the payment method work"
        ),
        Cause::DomainExpired => format!(
            "the registration of the domain of {host} has expired: renew it at the registrar at once, before the grace period ends and the name can be lost; DNS may stop answering at any time"
        ),
    }
}

/// The hint of one face of a cause.
fn sign_hint(sign: Sign, facts: &HintFacts<'_>) -> String {
    let host = facts.host;
    match sign {
        Sign::WpDatabase => format!(
            "WordPress on {host} cannot reach its database: check that the database server runs (`systemctl status mariadb` or `mysql`), that its disk is not full, and the credentials in wp-config.php"
        ),
        Sign::WpCritical => format!(
            "WordPress on {host} hit a fatal error (its critical-error page): read the PHP error log and the recovery-mode email WordPress sent the admin; a plugin or theme update is the usual cause"
        ),
        Sign::PhpFatal => format!(
            "a PHP fatal error on {host}: the detail names the file and line; read the PHP error log, and suspect the last plugin, theme or PHP version update; turn `display_errors` off in production"
        ),
        Sign::PhpParse => format!(
            "PHP cannot parse a file on {host}: a half-uploaded or hand-edited file, or code written for a newer PHP; fix or restore the file the detail names"
        ),
        Sign::BlankPage => format!(
            "{host} answers an empty page (a white screen): PHP most likely crashed with its errors hidden; read the PHP error log (or turn on WP_DEBUG_LOG) and suspect the last update"
        ),
        Sign::WpInstall => format!(
            "WordPress on {host} shows its installer: it cannot find its tables (the database was emptied or restored wrong, or `$table_prefix` in wp-config.php is wrong), and anyone who opens the installer can take the site over; restore the database or fix the prefix now"
        ),
        Sign::DefaultPage => format!(
            "{host} shows the web server's default page, not the site: its virtual host is not served (disabled, or its server_name/ServerName does not match), or the name points at a new server; check `nginx -T` or `apachectl -S` and the DNS record"
        ),
        Sign::WpMaintenance => format!(
            "WordPress on {host} is stuck in maintenance mode: an update was interrupted and left its `.maintenance` file; delete `.maintenance` in the WordPress root (beside wp-config.php), then check that the update finished (`wp core verify-checksums`)"
        ),
        Sign::BodyStalled => format!(
            "{host} sent the head of its response, then the body stopped coming: the application is stuck or very slow while producing the page (a slow query, a locked session, a full PHP-FPM pool) or a proxy is buffering; check the application's slow and error logs"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_serde_and_from_code() {
        assert_eq!(Cause::ALL.len(), 45);
        for &cause in Cause::ALL {
            let json = serde_json::to_string(&cause).unwrap();
            assert_eq!(json, format!("\"{}\"", cause.as_str()));
            let back: Cause = serde_json::from_str(&json).unwrap();
            assert_eq!(back, cause);
            assert_eq!(Cause::from_code(cause.as_str()), Some(cause));
        }
    }

    #[test]
    fn code_prefix_matches_layer_and_status_is_never_up() {
        for &cause in Cause::ALL {
            let prefix = cause.as_str().split('.').next().unwrap();
            assert_eq!(prefix, cause.layer().as_str(), "{cause}");
            assert_ne!(cause.status(), Status::Up, "{cause}");
        }
    }

    #[test]
    fn degraded_causes_are_exactly_the_contracts() {
        let degraded: Vec<_> = Cause::ALL
            .iter()
            .filter(|c| c.status() == Status::Degraded)
            .map(|c| c.as_str())
            .collect();
        assert_eq!(
            degraded,
            [
                "tcp.partial",
                "tls.expiring",
                "http.slow",
                "vantage.partial",
                "heartbeat.too_fast",
                "heartbeat.late",
                "http.insecure_redirect",
                "http.offsite_redirect",
                "site.intermittent",
                "domain.expiring"
            ]
        );
    }

    #[test]
    fn hints_name_the_address_or_host() {
        let facts = HintFacts {
            host: "blog.example.com",
            port: 443,
            addr: Some("203.0.113.7:443".parse().unwrap()),
            http_status: Some(429),
            source: None,
            sign: None,
        };
        assert_eq!(
            hint(Cause::TcpRefused, &facts),
            "nothing is listening on 203.0.113.7:443: is the web server running? `systemctl status nginx`, then `nginx -t`; or a firewall rejects port 443"
        );
        assert!(hint(Cause::HttpBlocked, &facts).contains("(429)"));
        for &cause in Cause::ALL {
            let h = hint(cause, &facts);
            assert!(h.len() > 40, "{cause}: hint too short: {h}");
        }
    }
}
