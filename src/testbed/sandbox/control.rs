//! The sandbox's control API under `/__sandbox/`: what the WeChat console and a bad day at WeChat
//! would do, as plain JSON calls, for the demo and staging runs (the kinds are listed in the
//! sandbox's module docs).

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::json;

use super::{Fault, FaultRule, FaultTarget, NewApplicant, Paging, Sandbox};

pub(super) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/applicants", get(list).post(add))
        .route("/applicants/{appid}", delete(remove))
        .route("/applicants/{appid}/status", post(set_status))
        .route("/tokens/expire", post(expire))
        .route("/tokens/revoke", post(revoke))
        .route("/clock/advance", post(advance))
        .route("/faults", post(inject).delete(clear))
        .route("/paging", get(paging).post(set_paging))
        .route("/stats", get(stats))
        .route("/calls", get(calls))
        .route("/platform", get(platform))
        .route("/platform/ticket", post(push_ticket))
        .route("/platform/tickets/expire", post(expire_tickets))
        .route("/platform/revoke", post(revoke_authorization))
        .route("/platform/authorize", post(authorize_again))
}

/// The third-party platform's side: the newest ticket (what the platform's receiver would have
/// written) and the owner's current refresh token (`null`: authorization revoked).
async fn platform(State(sb): State<Sandbox>) -> Response {
    Json(json!({
        "component_verify_ticket": sb.ticket(),
        "authorizer_refresh_token": sb.authorizer_refresh_token(),
    }))
    .into_response()
}

async fn push_ticket(State(sb): State<Sandbox>) -> Response {
    Json(json!({ "component_verify_ticket": sb.push_ticket() })).into_response()
}

async fn expire_tickets(State(sb): State<Sandbox>) -> StatusCode {
    sb.expire_tickets();
    StatusCode::NO_CONTENT
}

async fn revoke_authorization(State(sb): State<Sandbox>) -> StatusCode {
    sb.revoke_authorization();
    StatusCode::NO_CONTENT
}

async fn authorize_again(State(sb): State<Sandbox>) -> Response {
    Json(json!({ "authorizer_refresh_token": sb.authorize_again() })).into_response()
}

fn bad(reason: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, reason.into()).into_response()
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("bad JSON: {e}"))
}

async fn list(State(sb): State<Sandbox>) -> Response {
    Json(sb.applicants()).into_response()
}

async fn add(State(sb): State<Sandbox>, body: axum::body::Bytes) -> Response {
    let new: NewApplicant = if body.is_empty() {
        NewApplicant::default()
    } else {
        match parse(&body) {
            Ok(n) => n,
            Err(r) => return bad(r),
        }
    };
    if let Some(appid) = &new.appid
        && (appid.is_empty() || appid.len() > 64)
    {
        return bad("appid must be 1 to 64 characters");
    }
    Json(json!({ "appid": sb.add_applicant(new) })).into_response()
}

async fn remove(State(sb): State<Sandbox>, Path(appid): Path<String>) -> Response {
    if sb.remove_applicant(&appid) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (StatusCode::NOT_FOUND, format!("no applicant {appid}")).into_response()
    }
}

#[derive(Deserialize)]
struct StatusBody {
    status: i64,
}

async fn set_status(
    State(sb): State<Sandbox>,
    Path(appid): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let body: StatusBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return bad(r),
    };
    if sb.set_status(&appid, body.status) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (StatusCode::NOT_FOUND, format!("no applicant {appid}")).into_response()
    }
}

async fn expire(State(sb): State<Sandbox>) -> StatusCode {
    sb.expire_tokens();
    StatusCode::NO_CONTENT
}

async fn revoke(State(sb): State<Sandbox>) -> StatusCode {
    sb.revoke_tokens();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct AdvanceBody {
    secs: u64,
}

async fn advance(State(sb): State<Sandbox>, body: axum::body::Bytes) -> Response {
    match parse::<AdvanceBody>(&body) {
        Ok(b) => {
            sb.advance_clock(Duration::from_secs(b.secs));
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => bad(r),
    }
}

#[derive(Deserialize)]
struct FaultBody {
    target: String,
    kind: String,
    errcode: Option<i64>,
    status: Option<u16>,
    ms: Option<u64>,
    n: Option<usize>,
    /// A URL (`redirect`).
    location: Option<String>,
    /// Any JSON value (`expires_in`, `apply_list`).
    value: Option<serde_json::Value>,
    /// A raw answer body (`body`).
    body: Option<String>,
    #[serde(default = "one")]
    times: u32,
    #[serde(default)]
    skip: u32,
}

fn one() -> u32 {
    1
}

/// Turns the JSON form of a fault into a rule, or says what is wrong.
fn fault_rule(body: FaultBody) -> Result<FaultRule, String> {
    let target = match body.target.as_str() {
        "any" => FaultTarget::Any,
        "token" => FaultTarget::Token,
        a @ ("dev_apply_list" | "dev_agree" | "dev_refuse" | "dev_delete") => {
            FaultTarget::Action(a.to_owned())
        }
        other => {
            return Err(format!(
                "unknown target {other:?}: any, token, dev_apply_list, dev_agree, dev_refuse, dev_delete"
            ));
        }
    };
    let fault = match body.kind.as_str() {
        "errcode" => Fault::Errcode(body.errcode.ok_or("kind errcode needs \"errcode\"")?),
        "http" => {
            let status = body.status.ok_or("kind http needs \"status\"")?;
            if !(100..=599).contains(&status) {
                return Err(format!("{status} is not an HTTP status"));
            }
            Fault::Http(status)
        }
        "non_json" => Fault::NonJson,
        "delay" => Fault::Delay(Duration::from_millis(
            body.ms.ok_or("kind delay needs \"ms\"")?,
        )),
        "new_applicant_first" => Fault::NewApplicantFirst,
        "empty_list" => Fault::EmptyList,
        "empty_list_array" => Fault::EmptyListArray,
        "truncate" => Fault::Truncate(body.n.ok_or("kind truncate needs \"n\"")?),
        "first_page" => Fault::FirstPage,
        "applied_then_errcode" => Fault::AppliedThenErrcode(
            body.errcode
                .ok_or("kind applied_then_errcode needs \"errcode\"")?,
        ),
        "expires_in" => Fault::ExpiresIn(
            body.value
                .ok_or("kind expires_in needs \"value\"")?
                .to_string(),
        ),
        "redirect" => {
            let status = body.status.unwrap_or(307);
            if !(300..=399).contains(&status) {
                return Err(format!("{status} is not a redirect status"));
            }
            Fault::Redirect(
                status,
                body.location.ok_or("kind redirect needs \"location\"")?,
            )
        }
        "apply_list" => Fault::ApplyList(
            body.value
                .ok_or("kind apply_list needs \"value\"")?
                .to_string(),
        ),
        "long_errmsg" => Fault::LongErrmsg(
            body.errcode.ok_or("kind long_errmsg needs \"errcode\"")?,
            body.n.ok_or("kind long_errmsg needs \"n\"")?,
        ),
        "body" => Fault::Body(body.body.ok_or("kind body needs \"body\"")?),
        "oversized" => Fault::Oversized(body.n.ok_or("kind oversized needs \"n\"")?),
        other => {
            return Err(format!(
                "unknown kind {other:?}: errcode, http, non_json, delay, new_applicant_first, \
                 empty_list, empty_list_array, truncate, applied_then_errcode, expires_in, \
                 redirect, apply_list, long_errmsg, body, oversized"
            ));
        }
    };
    let fits = match &target {
        FaultTarget::Any => true,
        FaultTarget::Token => fault.applies_to(None),
        FaultTarget::Action(action) => fault.applies_to(Some(action)),
    };
    if !fits {
        return Err(format!(
            "kind {} does not apply to target {}",
            body.kind, body.target
        ));
    }
    if body.times == 0 {
        return Err("times must be at least 1".to_owned());
    }
    Ok(FaultRule {
        target,
        fault,
        times: body.times,
        skip: body.skip,
    })
}

async fn inject(State(sb): State<Sandbox>, body: axum::body::Bytes) -> Response {
    let body: FaultBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return bad(r),
    };
    match fault_rule(body) {
        Ok(rule) => {
            sb.inject(rule);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(reason) => bad(reason),
    }
}

async fn clear(State(sb): State<Sandbox>) -> StatusCode {
    sb.clear_faults();
    StatusCode::NO_CONTENT
}

async fn paging(State(sb): State<Sandbox>) -> Response {
    Json(sb.paging()).into_response()
}

async fn set_paging(State(sb): State<Sandbox>, body: axum::body::Bytes) -> Response {
    let paging: Paging = match parse(&body) {
        Ok(p) => p,
        Err(r) => return bad(r),
    };
    if paging.max_num == Some(0) {
        return bad("max_num must be at least 1 (or null for no cap)");
    }
    sb.set_paging(paging);
    Json(paging).into_response()
}

async fn stats(State(sb): State<Sandbox>) -> Response {
    Json(sb.stats()).into_response()
}

async fn calls(State(sb): State<Sandbox>) -> Response {
    Json(sb.calls()).into_response()
}
