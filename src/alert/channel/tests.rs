//! Channels built from their specs: secrets, signatures, what each takes.
use super::*;

#[test]
fn hmac_matches_rfc_4231_case_2() {
    assert_eq!(
        sign(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

fn spec(kind: ChannelKind) -> ChannelSpec {
    ChannelSpec {
        name: "c".into(),
        kind,
        storm_hold: Duration::ZERO,
        events: Vec::new(),
        sites: Vec::new(),
        tags: Vec::new(),
    }
}

#[test]
fn a_channel_takes_the_events_it_lists_and_tests_always() {
    let mut s = spec(ChannelKind::Slack(crate::config::SlackSpec {
        url: SecretRef::Value("http://127.0.0.1:9/s".into()),
    }));
    s.events = vec!["down".into(), "recovered".into()];
    let pager = Channel::new(&s, &Cluster::named("fra1")).unwrap();
    use AlertKind::*;
    for (kind, takes) in [
        (Down, true),
        (Storm, true),
        (Recovered, true),
        (Test, true),
        (Degraded, false),
        (Resolved, false),
        (Reminder, false),
        (Flapping, false),
    ] {
        assert_eq!(pager.takes(kind), takes, "{kind:?}");
    }
}

#[test]
fn alertmanager_takes_changes_and_leaves_repeats_and_grouping_to_alertmanager() {
    let cluster = Cluster::named("fra1");
    let am = Channel::new(
        &spec(ChannelKind::Alertmanager(crate::config::AlertmanagerSpec {
            urls: vec!["http://127.0.0.1:9".into()],
            resend_interval: Duration::from_secs(60),
            ca_file: None,
            bearer_token: Some(SecretRef::Value("t0k3n".into())),
            labels: Default::default(),
        })),
        &cluster,
    )
    .unwrap();
    let hook = Channel::new(
        &spec(ChannelKind::Webhook(crate::config::WebhookSpec {
            url: SecretRef::Value("http://127.0.0.1:9/h".into()),
            secret: None,
            ca_file: None,
        })),
        &cluster,
    )
    .unwrap();
    use AlertKind::*;
    for kind in [
        Down,
        CauseChanged,
        Degraded,
        Recovered,
        Resolved,
        Forgotten,
        Test,
    ] {
        assert!(am.takes(kind) && hook.takes(kind), "{kind:?}");
    }
    for kind in [Reminder, Storm, Flapping, Settled] {
        assert!(!am.takes(kind) && hook.takes(kind), "{kind:?}");
    }
    assert!(!am.groups_storms() && hook.groups_storms());
    assert_eq!(am.alertmanager().unwrap().shape.vantage, "fra1");
    assert!(hook.alertmanager().is_none());
    // The token is a secret like any other.
    assert_eq!(am.scrub("Bearer t0k3n refused"), "Bearer *** refused");
}

#[test]
fn secrets_come_from_files_and_env_and_are_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pw");
    std::fs::write(&f, "s3cret\n").unwrap();
    let s = resolve(&SecretRef::File(f)).unwrap();
    assert_eq!(s.expose(), "s3cret");
    assert_eq!(format!("{s:?}"), "***");
    assert!(resolve(&SecretRef::Env("SITEWATCH_TEST_SURELY_UNSET".into())).is_err());
    assert!(resolve(&SecretRef::Value(String::new())).is_err());
}
