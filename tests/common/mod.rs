//! Real servers for the integration tests, on loopback or in network
//! namespaces the tests create.
#![allow(dead_code)]

pub mod daemon;
pub mod dns;
pub mod http;
pub mod netns;
pub mod receiver;
pub mod slowsync;
pub mod smtp;
pub mod tls;
