//! End-to-end tests of the `common::dns` fixture, through hickory-resolver 0.26 and, for what the
//! resolver hides (the exact sections of a reply), through raw DNS messages over UDP and TCP.

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use crate::common::dns::{Answer, TTL, TestDns};
use hickory_resolver::{
    Resolver, TokioResolver,
    config::{
        ConnectionConfig, NameServerConfig, ProtocolConfig, ResolveHosts, ResolverConfig,
        ResolverOpts,
    },
    net::{DnsError, NetError, runtime::TokioRuntimeProvider},
    proto::{
        op::{Message, MessageType, OpCode, Query, ResponseCode},
        rr::{Name, RData, Record, RecordType},
    },
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, UdpSocket},
};

const V4_A: &str = "192.0.2.10";
const V4_B: &str = "192.0.2.11";
const V6_A: &str = "2001:db8::10";

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test IP address")
}

/// A resolver that sends everything to `dns` over `protocol`, with no cache, one try
/// (`attempts = 0`: the option counts *retries*), a 500 ms timeout and no hosts file.
fn resolver(dns: &TestDns, protocol: ProtocolConfig) -> TokioResolver {
    resolver_with(dns.addr, protocol, |_| {})
}

/// Like [`resolver`], then `tweak` may change the options.
fn resolver_with(
    addr: SocketAddr,
    protocol: ProtocolConfig,
    tweak: impl FnOnce(&mut ResolverOpts),
) -> TokioResolver {
    let mut connection = ConnectionConfig::new(protocol);
    connection.port = addr.port();
    let name_server = NameServerConfig::new(addr.ip(), true, vec![connection]);
    let config = ResolverConfig::from_name_servers(vec![name_server]);
    let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
    let options = builder.options_mut();
    options.cache_size = 0; // 0 turns the (moka) response cache off entirely
    options.timeout = Duration::from_millis(500);
    options.attempts = 0;
    options.use_hosts_file = ResolveHosts::Never;
    tweak(options);
    builder.build().expect("build resolver")
}

/// How a failed lookup is classified: the match to reuse in production.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    NxDomain,
    NoData,
    ServFail,
    Refused,
    OtherCode(ResponseCode),
    Timeout,
    Other(String),
}

fn classify(error: &NetError) -> Failure {
    match error {
        NetError::Dns(DnsError::NoRecordsFound(no_records)) => match no_records.response_code {
            ResponseCode::NXDomain => Failure::NxDomain,
            ResponseCode::NoError => Failure::NoData,
            code => Failure::OtherCode(code),
        },
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => Failure::ServFail,
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => Failure::Refused,
        NetError::Dns(DnsError::ResponseCode(code)) => Failure::OtherCode(*code),
        NetError::Timeout => Failure::Timeout,
        other => Failure::Other(format!("{other:?}")),
    }
}

/// The addresses in the answer section, in order.
fn addresses(records: &[Record]) -> Vec<IpAddr> {
    records
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .collect()
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("test DNS name")
}

/// A query message for `qname`/`qtype`, with EDNS like the resolver sends.
fn query_message(qname: &str, qtype: RecordType) -> Vec<u8> {
    let mut message = Message::new(0x5157, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name(qname), qtype));
    message.to_vec().expect("encode query")
}

/// Sends one raw query over UDP and returns the decoded reply.
async fn udp_query(addr: SocketAddr, qname: &str, qtype: RecordType) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
    socket
        .send_to(&query_message(qname, qtype), addr)
        .await
        .expect("send UDP query");
    let mut buffer = vec![0; 65_535];
    let (len, _) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buffer))
        .await
        .expect("UDP reply in time")
        .expect("receive UDP reply");
    Message::from_vec(&buffer[..len]).expect("decode reply")
}

/// Sends one raw query over TCP (two-byte length prefix) and returns the decoded reply.
async fn tcp_query(addr: SocketAddr, qname: &str, qtype: RecordType) -> Message {
    let mut stream = TcpStream::connect(addr).await.expect("connect TCP");
    let query = query_message(qname, qtype);
    let len = u16::try_from(query.len()).expect("query length");
    stream
        .write_all(&len.to_be_bytes())
        .await
        .expect("send length");
    stream.write_all(&query).await.expect("send TCP query");
    let read = async {
        let len = stream.read_u16().await.expect("reply length");
        let mut buffer = vec![0; usize::from(len)];
        stream.read_exact(&mut buffer).await.expect("reply body");
        buffer
    };
    let buffer = tokio::time::timeout(Duration::from_secs(2), read)
        .await
        .expect("TCP reply in time");
    Message::from_vec(&buffer).expect("decode reply")
}

#[tokio::test]
async fn addresses_answer_a_and_aaaa_with_the_right_types() {
    let dns = TestDns::start().await;
    dns.set(
        "www.example.test",
        Answer::Addrs(vec![ip(V4_A), ip(V6_A), ip(V4_B)]),
    );
    let resolver = resolver(&dns, ProtocolConfig::Udp);

    let a = resolver
        .lookup("www.example.test.", RecordType::A)
        .await
        .expect("A lookup");
    assert_eq!(addresses(a.answers()), vec![ip(V4_A), ip(V4_B)]);
    assert!(a.answers().iter().all(|r| r.record_type() == RecordType::A));
    assert!(a.answers().iter().all(|r| r.ttl == TTL));

    let aaaa = resolver
        .lookup("www.example.test", RecordType::AAAA)
        .await
        .expect("AAAA lookup");
    assert_eq!(addresses(aaaa.answers()), vec![ip(V6_A)]);
    assert!(
        aaaa.answers()
            .iter()
            .all(|r| r.record_type() == RecordType::AAAA)
    );

    // lookup_ip sends AAAA and A in parallel (default Ipv6AndIpv4) and puts AAAA first.
    let both = resolver
        .lookup_ip("www.example.test")
        .await
        .expect("lookup_ip");
    assert_eq!(
        both.iter().collect::<Vec<_>>(),
        vec![ip(V6_A), ip(V4_A), ip(V4_B)]
    );
    assert_eq!(dns.queries(), 4);
}

#[tokio::test]
async fn names_ignore_case_and_trailing_dot() {
    let dns = TestDns::start().await;
    dns.set("WWW.Example.TEST.", Answer::Addrs(vec![ip(V4_A)]));
    let resolver = resolver(&dns, ProtocolConfig::Udp);
    let a = resolver
        .lookup("www.EXAMPLE.test", RecordType::A)
        .await
        .expect("A lookup");
    assert_eq!(addresses(a.answers()), vec![ip(V4_A)]);
}

#[tokio::test]
async fn other_family_is_nodata() {
    let dns = TestDns::start().await;
    dns.set("v4only.example.test", Answer::Addrs(vec![ip(V4_A)]));
    let resolver = resolver(&dns, ProtocolConfig::Udp);

    let error = resolver
        .lookup("v4only.example.test", RecordType::AAAA)
        .await
        .expect_err("no AAAA");
    assert_eq!(classify(&error), Failure::NoData);
    assert!(error.is_no_records_found() && !error.is_nx_domain());
    let NetError::Dns(DnsError::NoRecordsFound(no_records)) = &error else {
        panic!("{error:?}");
    };
    // The SOA the server puts in the authority section comes through.
    assert!(no_records.soa.is_some());
    assert_eq!(no_records.negative_ttl, Some(TTL));

    // lookup_ip drops the failed family.
    let ips = resolver
        .lookup_ip("v4only.example.test")
        .await
        .expect("lookup_ip");
    assert_eq!(ips.iter().collect::<Vec<_>>(), vec![ip(V4_A)]);

    let reply = udp_query(dns.addr, "v4only.example.test.", RecordType::AAAA).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty());
    assert_eq!(reply.authorities.len(), 1);
    assert_eq!(reply.authorities[0].record_type(), RecordType::SOA);
}

#[tokio::test]
async fn nodata() {
    let dns = TestDns::start().await;
    dns.set("empty.example.test", Answer::NoData);
    let resolver = resolver(&dns, ProtocolConfig::Udp);
    for qtype in [RecordType::A, RecordType::AAAA] {
        let error = resolver
            .lookup("empty.example.test", qtype)
            .await
            .expect_err("NODATA");
        assert_eq!(classify(&error), Failure::NoData, "{qtype}: {error:?}");
    }
    // Both families fail, lookup_ip returns the error of the first one it asked (AAAA).
    let error = resolver
        .lookup_ip("empty.example.test")
        .await
        .expect_err("NODATA");
    assert_eq!(classify(&error), Failure::NoData);
}

#[tokio::test]
async fn nxdomain_for_marked_and_unknown_names() {
    let dns = TestDns::start().await;
    dns.set("gone.example.test", Answer::NxDomain);
    let resolver = resolver(&dns, ProtocolConfig::Udp);
    for host in ["gone.example.test", "never-set.example.test"] {
        let error = resolver.lookup_ip(host).await.expect_err("NXDOMAIN");
        assert_eq!(classify(&error), Failure::NxDomain, "{host}: {error:?}");
        assert!(error.is_nx_domain());
        let NetError::Dns(DnsError::NoRecordsFound(no_records)) = &error else {
            panic!("{error:?}");
        };
        assert_eq!(no_records.negative_ttl, Some(TTL));
    }
    let reply = udp_query(dns.addr, "gone.example.test.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert!(reply.answers.is_empty());
    assert_eq!(reply.authorities[0].record_type(), RecordType::SOA);
}

#[tokio::test]
async fn servfail() {
    let dns = TestDns::start().await;
    dns.set("broken.example.test", Answer::ServFail);
    let resolver = resolver(&dns, ProtocolConfig::Udp);
    let error = resolver
        .lookup("broken.example.test", RecordType::A)
        .await
        .expect_err("SERVFAIL");
    assert_eq!(classify(&error), Failure::ServFail, "{error:?}");
    assert!(matches!(
        error,
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail))
    ));
    // attempts = 0: a single query, no retry.
    assert_eq!(dns.queries(), 1);
}

#[tokio::test]
async fn servfail_is_retried_when_attempts_is_1() {
    let dns = TestDns::start().await;
    dns.set("broken.example.test", Answer::ServFail);
    let resolver = resolver_with(dns.addr, ProtocolConfig::Udp, |options| {
        options.attempts = 1
    });
    let error = resolver
        .lookup("broken.example.test", RecordType::A)
        .await
        .expect_err("SERVFAIL");
    assert_eq!(classify(&error), Failure::ServFail);
    // `attempts` counts retries: 1 means the query is sent twice.
    assert_eq!(dns.queries(), 2);
}

#[tokio::test]
async fn refused() {
    let dns = TestDns::start().await;
    dns.set("private.example.test", Answer::Refused);
    let resolver = resolver(&dns, ProtocolConfig::Udp);
    let error = resolver
        .lookup_ip("private.example.test")
        .await
        .expect_err("REFUSED");
    assert_eq!(classify(&error), Failure::Refused, "{error:?}");
    assert!(matches!(
        error,
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused))
    ));
}

#[tokio::test]
async fn cname_chain_is_answered_in_full() {
    let dns = TestDns::start().await;
    dns.set("www.example.test", Answer::Cname("edge.cdn.test".into()));
    dns.set("edge.cdn.test", Answer::Cname("node1.cdn.test.".into()));
    dns.set("node1.cdn.test", Answer::Addrs(vec![ip(V4_A), ip(V6_A)]));
    let resolver = resolver(&dns, ProtocolConfig::Udp);

    let a = resolver
        .lookup("www.example.test", RecordType::A)
        .await
        .expect("A via CNAME");
    let kinds: Vec<_> = a
        .answers()
        .iter()
        .map(|r| (r.name.to_ascii(), r.record_type()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("www.example.test.".to_owned(), RecordType::CNAME),
            ("edge.cdn.test.".to_owned(), RecordType::CNAME),
            ("node1.cdn.test.".to_owned(), RecordType::A),
        ]
    );
    assert_eq!(addresses(a.answers()), vec![ip(V4_A)]);
    // The whole chain came in one reply: the resolver did not query the targets itself.
    assert_eq!(dns.queries(), 1);

    let ips = resolver
        .lookup_ip("www.example.test")
        .await
        .expect("lookup_ip");
    assert_eq!(ips.iter().collect::<Vec<_>>(), vec![ip(V6_A), ip(V4_A)]);

    // A CNAME query gets only the first CNAME.
    let reply = udp_query(dns.addr, "www.example.test.", RecordType::CNAME).await;
    assert_eq!(reply.answers.len(), 1);
    assert_eq!(reply.answers[0].record_type(), RecordType::CNAME);
}

#[tokio::test]
async fn cname_to_a_name_without_addresses_of_that_family_is_nodata() {
    let dns = TestDns::start().await;
    dns.set(
        "www.example.test",
        Answer::Cname("v4only.example.test".into()),
    );
    dns.set("v4only.example.test", Answer::Addrs(vec![ip(V4_A)]));
    let resolver = resolver(&dns, ProtocolConfig::Udp);
    let error = resolver
        .lookup("www.example.test", RecordType::AAAA)
        .await
        .expect_err("no AAAA");
    assert_eq!(classify(&error), Failure::NoData, "{error:?}");
    let reply = udp_query(dns.addr, "www.example.test.", RecordType::AAAA).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(reply.answers.len(), 1);
    assert_eq!(reply.answers[0].record_type(), RecordType::CNAME);
}

#[tokio::test]
async fn dangling_cname_is_nxdomain_with_the_cname() {
    let dns = TestDns::start().await;
    dns.set("www.example.test", Answer::Cname("missing.cdn.test".into()));
    dns.set("old.example.test", Answer::Cname("gone.cdn.test".into()));
    dns.set("gone.cdn.test", Answer::NxDomain);
    let resolver = resolver(&dns, ProtocolConfig::Udp);

    for host in ["www.example.test", "old.example.test"] {
        let before = dns.queries();
        let error = resolver
            .lookup(host, RecordType::A)
            .await
            .expect_err("dangling CNAME");
        assert_eq!(classify(&error), Failure::NxDomain, "{host}: {error:?}");
        // NXDOMAIN with an answer is not an error to hickory: it follows the CNAME itself and
        // asks for the target, which is NXDOMAIN (the error's query is the target's).
        assert_eq!(dns.queries() - before, 2);
        let NetError::Dns(DnsError::NoRecordsFound(no_records)) = &error else {
            panic!("{error:?}");
        };
        assert_ne!(no_records.query.name(), &name(&format!("{host}.")));

        let reply = udp_query(dns.addr, host, RecordType::A).await;
        assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(reply.answers.len(), 1);
        assert_eq!(reply.answers[0].record_type(), RecordType::CNAME);
        assert_eq!(reply.authorities[0].record_type(), RecordType::SOA);
    }
}

#[tokio::test]
async fn cname_loop_is_servfail() {
    let dns = TestDns::start().await;
    dns.set("a.loop.test", Answer::Cname("b.loop.test".into()));
    dns.set("b.loop.test", Answer::Cname("a.loop.test".into()));
    let resolver = resolver(&dns, ProtocolConfig::Udp);
    let error = resolver
        .lookup("a.loop.test", RecordType::A)
        .await
        .expect_err("loop");
    assert_eq!(classify(&error), Failure::ServFail);
}

#[tokio::test]
async fn silent_times_out() {
    let dns = TestDns::start().await;
    dns.set("hang.example.test", Answer::Silent);
    let resolver = resolver(&dns, ProtocolConfig::Udp);
    let started = Instant::now();
    let error = resolver
        .lookup("hang.example.test", RecordType::A)
        .await
        .expect_err("timeout");
    let elapsed = started.elapsed();
    assert_eq!(classify(&error), Failure::Timeout, "{error:?}");
    assert!(matches!(error, NetError::Timeout));
    assert!(
        elapsed >= Duration::from_millis(450) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
    // Within one attempt the UDP client may resend (after 333 ms at the earliest, hickory's
    // retry floor), depending on the round-trip time it has measured so far.
    assert!((1..=2).contains(&dns.queries()), "{}", dns.queries());
}

#[tokio::test]
async fn silent_with_attempts_1_takes_two_timeouts() {
    let dns = TestDns::start().await;
    dns.set("hang.example.test", Answer::Silent);
    let resolver = resolver_with(dns.addr, ProtocolConfig::Udp, |options| {
        options.attempts = 1
    });
    let started = Instant::now();
    let error = resolver
        .lookup("hang.example.test", RecordType::A)
        .await
        .expect_err("timeout");
    let elapsed = started.elapsed();
    assert_eq!(classify(&error), Failure::Timeout, "{error:?}");
    assert!(
        elapsed >= Duration::from_millis(950) && elapsed < Duration::from_millis(2500),
        "{elapsed:?}"
    );
    assert!((2..=4).contains(&dns.queries()), "{}", dns.queries());
}

#[tokio::test]
async fn set_applies_to_the_next_query() {
    let dns = TestDns::start().await;
    let resolver = resolver(&dns, ProtocolConfig::Udp);
    let host = "flip.example.test";

    dns.set(host, Answer::Addrs(vec![ip(V4_A)]));
    let first = resolver.lookup(host, RecordType::A).await.expect("first");
    assert_eq!(addresses(first.answers()), vec![ip(V4_A)]);

    dns.set(host, Answer::Addrs(vec![ip(V4_B)]));
    let second = resolver.lookup(host, RecordType::A).await.expect("second");
    assert_eq!(addresses(second.answers()), vec![ip(V4_B)]);

    dns.set(host, Answer::NxDomain);
    let third = resolver
        .lookup(host, RecordType::A)
        .await
        .expect_err("third");
    assert_eq!(classify(&third), Failure::NxDomain);

    dns.set(host, Answer::Addrs(vec![ip(V4_A)]));
    let fourth = resolver.lookup(host, RecordType::A).await.expect("fourth");
    assert_eq!(addresses(fourth.answers()), vec![ip(V4_A)]);

    // Every lookup reached the server: nothing was cached.
    assert_eq!(dns.queries(), 4);
}

#[tokio::test]
async fn default_cache_keeps_answers_for_their_ttl() {
    let dns = TestDns::start().await;
    let host = "cached.example.test";
    dns.set(host, Answer::Addrs(vec![ip(V4_A)]));
    let resolver = resolver_with(dns.addr, ProtocolConfig::Udp, |options| {
        options.cache_size = ResolverOpts::default().cache_size;
    });
    resolver.lookup(host, RecordType::A).await.expect("first");
    dns.set(host, Answer::Addrs(vec![ip(V4_B)]));
    let cached = resolver.lookup(host, RecordType::A).await.expect("second");
    assert_eq!(
        addresses(cached.answers()),
        vec![ip(V4_A)],
        "served from cache"
    );
    assert_eq!(dns.queries(), 1);
}

#[tokio::test]
async fn tcp_is_served_on_the_same_port() {
    let dns = TestDns::start().await;
    dns.set("www.example.test", Answer::Addrs(vec![ip(V4_A)]));
    dns.set("gone.example.test", Answer::NxDomain);
    let resolver = resolver(&dns, ProtocolConfig::Tcp);

    let a = resolver
        .lookup("www.example.test", RecordType::A)
        .await
        .expect("A over TCP");
    assert_eq!(addresses(a.answers()), vec![ip(V4_A)]);
    let error = resolver
        .lookup("gone.example.test", RecordType::A)
        .await
        .expect_err("NXDOMAIN over TCP");
    assert_eq!(classify(&error), Failure::NxDomain);

    let reply = tcp_query(dns.addr, "www.example.test.", RecordType::A).await;
    assert_eq!(addresses(&reply.answers), vec![ip(V4_A)]);
    assert_eq!(dns.queries(), 3);
}

#[tokio::test]
async fn silent_over_tcp_times_out() {
    let dns = TestDns::start().await;
    dns.set("hang.example.test", Answer::Silent);
    let resolver = resolver(&dns, ProtocolConfig::Tcp);
    let error = resolver
        .lookup("hang.example.test", RecordType::A)
        .await
        .expect_err("timeout");
    assert_eq!(classify(&error), Failure::Timeout, "{error:?}");
}

#[tokio::test]
async fn dropping_the_server_frees_the_port() {
    let dns = TestDns::start().await;
    dns.set("www.example.test", Answer::Addrs(vec![ip(V4_A)]));
    let addr = dns.addr;
    // An open TCP connection must not keep the server alive.
    let reply = {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let query = query_message("www.example.test.", RecordType::A);
        let len = u16::try_from(query.len()).expect("length");
        stream.write_all(&len.to_be_bytes()).await.expect("send");
        stream.write_all(&query).await.expect("send");
        let len = stream.read_u16().await.expect("reply length");
        let mut buffer = vec![0; usize::from(len)];
        stream.read_exact(&mut buffer).await.expect("reply");
        (stream, Message::from_vec(&buffer).expect("decode"))
    };
    let (mut open_connection, message) = reply;
    assert_eq!(addresses(&message.answers), vec![ip(V4_A)]);

    drop(dns);
    // Let the runtime run the aborted tasks' destructors.
    tokio::time::sleep(Duration::from_millis(50)).await;

    // The server closed the connection it had open: end of stream (or a reset).
    let mut rest = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(2),
        open_connection.read_to_end(&mut rest),
    )
    .await
    .expect("open connection closed by the server");
    assert!(rest.is_empty(), "{read:?}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "TCP still accepting"
    );
    UdpSocket::bind(addr).await.expect("UDP port free again");
    // tokio sets SO_REUSEADDR on listeners, so the server side's TIME_WAIT does not matter.
    TcpListener::bind(addr).await.expect("TCP port free again");
}

#[tokio::test]
async fn several_servers_at_once() {
    let mut servers = Vec::new();
    for _ in 0..8 {
        servers.push(TestDns::start().await);
    }
    for (index, dns) in servers.iter().enumerate() {
        let resolver = resolver(dns, ProtocolConfig::Udp);
        let error = resolver
            .lookup(format!("n{index}.example.test"), RecordType::A)
            .await
            .expect_err("empty table");
        assert_eq!(classify(&error), Failure::NxDomain);
        assert_eq!(dns.queries(), 1);
    }
}
