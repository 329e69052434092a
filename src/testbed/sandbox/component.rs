//! A third-party platform (第三方平台) in the sandbox: the component-token chain a service
//! provider runs a plugin through for its owner — `component_verify_ticket` (which WeChat pushes
//! to the platform, here handed out by [`Sandbox::push_ticket`]), the component token, and the
//! authorizer token that `/wxa/devplugin` then accepts like the account's own — with its errors
//! (61004 by fault, 61005, 61006, 61023). The authorizer's refresh token is rotated on every use
//! and the one it replaced stops working: a client that does not keep the one returned is found
//! out by its next start.

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Call, Sandbox, after, before, errcode, errcode_answer};

/// The platform's side of the sandbox's world.
#[derive(Default)]
pub(super) struct Platform {
    /// Tickets pushed so far (valid unless expired).
    tickets: HashSet<String>,
    /// The newest ticket.
    ticket: String,
    /// Tickets that now answer 61005.
    expired: HashSet<String>,
    /// Component tokens issued, with when they expire (sandbox seconds).
    component_tokens: HashMap<String, u64>,
    /// The authorizer's one valid refresh token (`None`: authorization revoked).
    refresh_token: Option<String>,
    /// Refresh tokens handed out so far, for naming them.
    refreshes: u64,
}

impl Platform {
    /// A platform with one ticket pushed and the owner's authorization given.
    pub(super) fn new() -> Self {
        let mut platform = Self::default();
        platform.push_ticket();
        platform.authorize();
        platform
    }

    fn push_ticket(&mut self) -> String {
        let ticket = format!("ticket@@@sandbox-{}", self.tickets.len() + 1);
        self.tickets.insert(ticket.clone());
        self.ticket = ticket.clone();
        ticket
    }

    fn authorize(&mut self) -> String {
        self.refreshes += 1;
        let token = format!("refreshtoken@@@sandbox-{}", self.refreshes);
        self.refresh_token = Some(token.clone());
        token
    }
}

impl Sandbox {
    /// The newest `component_verify_ticket`, as the platform's receiver would have written it.
    pub fn ticket(&self) -> String {
        self.state().platform.ticket.clone()
    }

    /// WeChat pushes a new ticket (every 10 minutes in real life); older ones stay valid until
    /// expired. Returns it.
    pub fn push_ticket(&self) -> String {
        self.state().platform.push_ticket()
    }

    /// Every ticket pushed so far expires: the component token endpoint answers 61005 for them.
    pub fn expire_tickets(&self) {
        let mut state = self.state();
        let tickets: Vec<String> = state.platform.tickets.iter().cloned().collect();
        state.platform.expired.extend(tickets);
    }

    /// The authorizer's current refresh token (`None`: revoked).
    pub fn authorizer_refresh_token(&self) -> Option<String> {
        self.state().platform.refresh_token.clone()
    }

    /// The plugin's owner revokes the platform's authorization: every refresh token answers
    /// 61023.
    pub fn revoke_authorization(&self) {
        self.state().platform.refresh_token = None;
    }

    /// The owner authorizes the platform again; returns the new refresh token (what an operator
    /// puts in `WECHAT_AUTHORIZER_REFRESH_TOKEN`).
    pub fn authorize_again(&self) -> String {
        self.state().platform.authorize()
    }
}

#[derive(Deserialize)]
struct ComponentTokenRequest {
    component_appid: Option<String>,
    component_appsecret: Option<String>,
    component_verify_ticket: Option<String>,
}

/// `POST /cgi-bin/component/api_component_token`.
pub(super) async fn component_token(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let config = &sb.inner.config;
    let (answer, delay) = {
        let mut state = sb.state();
        state.stats.component_token_requests += 1;
        let (faulted, delay, _) = before(&mut state, &Call::Token);
        let answer = faulted.map(|(answer, _)| answer).unwrap_or_else(|| {
            let Ok(request) = serde_json::from_slice::<ComponentTokenRequest>(&body) else {
                return errcode_answer(errcode::BAD_REQUEST);
            };
            if request.component_appid.as_deref() != Some(config.component_appid.as_str()) {
                return errcode_answer(errcode::INVALID_COMPONENT);
            }
            if request.component_appsecret.as_deref() != Some(config.component_secret.as_str()) {
                return errcode_answer(errcode::INVALID_SECRET);
            }
            let ticket = request.component_verify_ticket.unwrap_or_default();
            if state.platform.expired.contains(&ticket) {
                return errcode_answer(errcode::TICKET_EXPIRED);
            }
            if !state.platform.tickets.contains(&ticket) {
                return errcode_answer(errcode::TICKET_INVALID);
            }
            let token = format!("COMPONENT_{}", state.generator.token());
            let expires_at = state.now() + config.token_ttl.as_secs();
            state
                .platform
                .component_tokens
                .insert(token.clone(), expires_at);
            axum::Json(json!({
                "component_access_token": token,
                "expires_in": config.token_ttl.as_secs(),
            }))
            .into_response()
        });
        (answer, delay)
    };
    after(answer, delay).await
}

#[derive(Deserialize)]
struct AuthorizerTokenRequest {
    component_appid: Option<String>,
    authorizer_appid: Option<String>,
    authorizer_refresh_token: Option<String>,
}

/// `POST /cgi-bin/component/api_authorizer_token?component_access_token=…`.
pub(super) async fn authorizer_token(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let config = &sb.inner.config;
    let (answer, delay) = {
        let mut state = sb.state();
        state.stats.authorizer_token_requests += 1;
        let (faulted, delay, _) = before(&mut state, &Call::Token);
        let answer = faulted.map(|(answer, _)| answer).unwrap_or_else(|| {
            let Some(component) = q.get("component_access_token") else {
                return errcode_answer(errcode::TOKEN_MISSING);
            };
            match state.platform.component_tokens.get(component) {
                None => return errcode_answer(errcode::INVALID_CREDENTIAL),
                Some(expires_at) if state.now() >= *expires_at => {
                    return errcode_answer(errcode::TOKEN_EXPIRED);
                }
                Some(_) => {}
            }
            let Ok(request) = serde_json::from_slice::<AuthorizerTokenRequest>(&body) else {
                return errcode_answer(errcode::BAD_REQUEST);
            };
            if request.component_appid.as_deref() != Some(config.component_appid.as_str()) {
                return errcode_answer(errcode::INVALID_COMPONENT);
            }
            if request.authorizer_appid.as_deref() != Some(config.appid.as_str()) {
                return errcode_answer(errcode::INVALID_APPID);
            }
            let presented = request.authorizer_refresh_token.unwrap_or_default();
            if state.platform.refresh_token.as_deref() != Some(presented.as_str()) {
                return errcode_answer(errcode::REFRESH_TOKEN_INVALID);
            }
            let token = state.issue(config.token_ttl);
            let refresh = state.platform.authorize();
            axum::Json(json!({
                "authorizer_access_token": token,
                "expires_in": config.token_ttl.as_secs(),
                "authorizer_refresh_token": refresh,
            }))
            .into_response()
        });
        (answer, delay)
    };
    after(answer, delay).await
}
