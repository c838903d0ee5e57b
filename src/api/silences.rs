//! Silences over HTTP, in Alertmanager's v2 shape (so `amtool`-style
//! bodies and habits carry over):
//!
//! | request | does |
//! |---|---|
//! | `POST /api/v1/silences` | makes a silence (or, with the `id` of one, replaces it); answers `{"silenceID": …}` |
//! | `GET /api/v1/silences` | lists them, each with `status.state` (`pending`, `active`, `expired`) |
//! | `GET /api/v1/silence/{id}` | one |
//! | `DELETE /api/v1/silence/{id}` (or `/api/v1/silences/{id}`) | expires it now |
//!
//! A silence is written to the state database before it is acknowledged;
//! if it cannot be, the answer is `503` and nothing changes.

use super::routes::error;
use crate::history::History;
use crate::silence::{self, Matcher, Silence, Silences};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::SystemTime;

/// What the silence routes reach.
#[derive(Clone)]
pub(super) struct SilenceState {
    set: Silences,
    history: History,
}

/// The silence routes over `set`, saving through `history`.
pub(super) fn routes<S>(set: Silences, history: History) -> Router<S> {
    let state = Arc::new(SilenceState { set, history });
    Router::new()
        .route("/api/v1/silences", get(list).post(post))
        .route("/api/v1/silences/{id}", axum::routing::delete(expire))
        .route("/api/v1/silence/{id}", get(one).delete(expire))
        .with_state(state)
}

/// A silence as posted (Alertmanager's `PostableSilence`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Postable {
    id: Option<String>,
    matchers: Vec<Matcher>,
    #[serde(with = "crate::timefmt")]
    starts_at: SystemTime,
    #[serde(with = "crate::timefmt")]
    ends_at: SystemTime,
    created_by: String,
    #[serde(default)]
    comment: String,
}

/// A silence as listed (Alertmanager's `GettableSilence`).
#[derive(Serialize)]
struct Gettable {
    #[serde(flatten)]
    silence: Silence,
    status: Status,
}

#[derive(Serialize)]
struct Status {
    state: &'static str,
}

fn gettable(s: Silence, now: SystemTime) -> Gettable {
    let state = silence::state(&s, now);
    Gettable {
        silence: s,
        status: Status { state },
    }
}

async fn save(state: &SilenceState, s: Silence) -> Result<(), Response> {
    if let Err(e) = state.history.save_silence(&s).await {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the silence cannot be stored, so it was not made: {e}"),
        ));
    }
    state
        .set
        .put(s)
        .map_err(|e| error(StatusCode::BAD_REQUEST, e))
}

async fn post(
    State(state): State<Arc<SilenceState>>,
    body: Result<Json<Postable>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(p) = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "not a silence: {} (see docs/maintenance.md, \"Silences\")",
                    e.body_text()
                ),
            );
        }
    };
    let now = SystemTime::now();
    let id = match p.id {
        Some(id) if state.set.get(&id).is_none() => {
            return error(StatusCode::NOT_FOUND, format!("no silence {id}"));
        }
        Some(id) => id,
        None if state.set.live(now) >= silence::MAX_SILENCES => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "{} silences are pending or active already: expire some first",
                    silence::MAX_SILENCES
                ),
            );
        }
        None => silence::new_id(),
    };
    let s = Silence {
        id: id.clone(),
        matchers: p.matchers,
        starts_at: p.starts_at,
        ends_at: p.ends_at,
        created_by: p.created_by,
        comment: p.comment,
        updated_at: now,
    };
    if let Err(e) = silence::check(&s) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    if s.ends_at <= now {
        return error(
            StatusCode::BAD_REQUEST,
            "`endsAt` is in the past: the silence would never mute anything".to_string(),
        );
    }
    match save(&state, s).await {
        Ok(()) => {
            tracing::info!(silence = %id, "silence saved");
            Json(serde_json::json!({ "silenceID": id })).into_response()
        }
        Err(r) => r,
    }
}

async fn list(State(state): State<Arc<SilenceState>>) -> Response {
    let now = SystemTime::now();
    let all: Vec<Gettable> = state
        .set
        .list()
        .into_iter()
        .map(|s| gettable(s, now))
        .collect();
    Json(all).into_response()
}

async fn one(State(state): State<Arc<SilenceState>>, Path(id): Path<String>) -> Response {
    match state.set.get(&id) {
        Some(s) => Json(gettable(s, SystemTime::now())).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no silence {id}")),
    }
}

async fn expire(State(state): State<Arc<SilenceState>>, Path(id): Path<String>) -> Response {
    let Some(mut s) = state.set.get(&id) else {
        return error(StatusCode::NOT_FOUND, format!("no silence {id}"));
    };
    let now = SystemTime::now();
    if s.ends_at <= now {
        return Json(gettable(s, now)).into_response();
    }
    // A pending silence is expired without ever having been in force.
    s.starts_at = s.starts_at.min(now - std::time::Duration::from_millis(1));
    s.ends_at = now;
    s.updated_at = now;
    match save(&state, s.clone()).await {
        Ok(()) => {
            tracing::info!(silence = %id, "silence expired");
            Json(gettable(s, now)).into_response()
        }
        Err(r) => r,
    }
}
