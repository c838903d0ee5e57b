//! Heartbeat monitors: jobs that must ping sitewatch on a schedule.

pub mod cron;
