//! Self-tests of the test fixtures, not of sitewatch: the loopback DNS
//! server (`common::dns`), the TLS servers and CA (`common::tls`), the SMTP
//! server and the webhook receiver (`common::smtp`, `common::receiver`).
//! They pin down what each fixture does (and what the third-party clients
//! see of it), so that a product test that fails points at sitewatch, not
//! at its test bench. Each lives beside its fixture in `common/selftest/`.

mod common;

#[path = "common/selftest/alerting.rs"]
mod alerting;
#[path = "common/selftest/dns.rs"]
mod dns;
#[path = "common/selftest/tls.rs"]
mod tls;
