//! The sandbox over real HTTP: token semantics, the devplugin state machine with raw requests,
//! faults, paging knobs, and the control API.

use std::time::Duration;

use serde_json::{Value, json};
use wxplugin_bot::testbed::sandbox::{
    Fault, FaultRule, FaultTarget, Paging, RunningSandbox, Sandbox, SandboxConfig,
};

async fn sandbox(applicants: usize) -> RunningSandbox {
    Sandbox::spawn(SandboxConfig {
        applicants,
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

async fn stable(sb: &RunningSandbox, force: bool) -> Value {
    let d = SandboxConfig::default();
    reqwest::Client::new()
        .post(format!("{}/cgi-bin/stable_token", sb.base_url))
        .json(&json!({"grant_type": "client_credential", "appid": d.appid, "secret": d.secret, "force_refresh": force}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn classic(sb: &RunningSandbox) -> Value {
    let d = SandboxConfig::default();
    reqwest::get(format!(
        "{}/cgi-bin/token?grant_type=client_credential&appid={}&secret={}",
        sb.base_url, d.appid, d.secret
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap()
}

async fn devplugin(sb: &RunningSandbox, token: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(format!(
            "{}/wxa/devplugin?access_token={token}",
            sb.base_url
        ))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn token(answer: &Value) -> String {
    answer["access_token"].as_str().unwrap().to_owned()
}

/// The appids of a `dev_apply_list` answer.
fn listed(answer: &Value) -> Vec<String> {
    answer["apply_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["appid"].as_str().unwrap().to_owned())
        .collect()
}

fn list(page: u64, num: u64) -> Value {
    json!({"action": "dev_apply_list", "page": page, "num": num})
}

fn fault(target: &str, fault: Fault) -> FaultRule {
    FaultRule {
        target: match target {
            "any" => FaultTarget::Any,
            "token" => FaultTarget::Token,
            action => FaultTarget::Action(action.to_owned()),
        },
        fault,
        times: 1,
        skip: 0,
    }
}

async fn control(sb: &RunningSandbox, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/__sandbox/{path}", sb.base_url))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn stable_token_is_shared_while_valid_and_renewed_in_its_last_five_minutes() {
    let sb = sandbox(0).await;

    let first = stable(&sb, false).await;
    let again = stable(&sb, false).await;
    sb.sandbox.advance_clock(Duration::from_secs(7200 - 200));
    let renewed = stable(&sb, false).await;

    assert_eq!(token(&first), token(&again));
    assert_eq!(first["expires_in"], 7200);
    assert_ne!(token(&renewed), token(&first));
    // The old one still works until it expires.
    let listed = devplugin(
        &sb,
        &token(&first),
        json!({"action": "dev_apply_list", "page": 1, "num": 10}),
    )
    .await;
    assert_eq!(listed["errcode"], 0);
    sb.sandbox.advance_clock(Duration::from_secs(300));
    let expired = devplugin(
        &sb,
        &token(&first),
        json!({"action": "dev_apply_list", "page": 1, "num": 10}),
    )
    .await;
    assert_eq!(expired["errcode"], 42001);
}

#[tokio::test]
async fn force_refresh_invalidates_the_previous_stable_token() {
    let sb = sandbox(0).await;
    let old = token(&stable(&sb, false).await);

    let new = token(&stable(&sb, true).await);

    assert_ne!(old, new);
    let with_old = devplugin(
        &sb,
        &old,
        json!({"action": "dev_apply_list", "page": 1, "num": 1}),
    )
    .await;
    let with_new = devplugin(
        &sb,
        &new,
        json!({"action": "dev_apply_list", "page": 1, "num": 1}),
    )
    .await;
    assert_eq!(with_old["errcode"], 40001);
    assert_eq!(with_new["errcode"], 0);
}

#[tokio::test]
async fn each_classic_fetch_leaves_the_previous_token_five_minutes() {
    let sb = sandbox(0).await;
    let first = token(&classic(&sb).await);
    let second = token(&classic(&sb).await);
    let list = json!({"action": "dev_apply_list", "page": 1, "num": 1});

    let within = devplugin(&sb, &first, list.clone()).await;
    sb.sandbox.advance_clock(Duration::from_secs(301));
    let after = devplugin(&sb, &first, list.clone()).await;
    let newest = devplugin(&sb, &second, list).await;

    assert_eq!(within["errcode"], 0);
    assert_eq!(after["errcode"], 42001);
    assert_eq!(newest["errcode"], 0);
    assert_eq!(sb.sandbox.stats().classic_token_requests, 2);
}

#[tokio::test]
async fn bad_credentials_and_missing_tokens_get_wechats_codes() {
    let sb = sandbox(0).await;
    let client = reqwest::Client::new();
    let wrong = |appid: &str, secret: &str| json!({"grant_type": "client_credential", "appid": appid, "secret": secret, "force_refresh": false});
    let url = format!("{}/cgi-bin/stable_token", sb.base_url);
    let d = SandboxConfig::default();

    let bad_appid: Value = client
        .post(&url)
        .json(&wrong("wx1", &d.secret))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bad_secret: Value = client
        .post(&url)
        .json(&wrong(&d.appid, "x"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let no_token: Value = client
        .post(format!("{}/wxa/devplugin", sb.base_url))
        .json(&json!({"action": "dev_apply_list", "page": 1, "num": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(bad_appid["errcode"], 40013);
    assert_eq!(bad_secret["errcode"], 40125);
    assert_eq!(no_token["errcode"], 41001, "{no_token}");
    assert!(no_token["errmsg"].as_str().unwrap().contains("rid:"));
}

#[tokio::test]
async fn malformed_devplugin_requests_are_47001_and_refuse_needs_appid_and_reason() {
    let sb = sandbox(1).await;
    let t = token(&stable(&sb, false).await);
    let appid = sb.sandbox.applicants()[0].appid.clone();

    let cases = [
        json!({"action": "dev_apply_list"}),
        json!({"action": "dev_apply_list", "page": 0, "num": 10}),
        json!({"action": "dev_refuse", "reason": "no appid"}),
        json!({"action": "dev_refuse", "appid": appid}),
        json!({"action": "dev_refuse", "appid": appid, "reason": "  "}),
        json!({"action": "dev_agree"}),
        json!({"action": "dev_fly"}),
        json!({}),
    ];
    for body in cases {
        assert_eq!(
            devplugin(&sb, &t, body.clone()).await["errcode"],
            47001,
            "{body}"
        );
    }
    assert_eq!(sb.sandbox.applicant(&appid).unwrap().status, 1);
}

#[tokio::test]
async fn the_list_matches_the_documented_shape() {
    let sb = sandbox(3).await;
    let t = token(&stable(&sb, false).await);

    let answer = devplugin(
        &sb,
        &t,
        json!({"action": "dev_apply_list", "page": 1, "num": 2}),
    )
    .await;

    assert_eq!(answer["errcode"], 0);
    assert_eq!(answer["errmsg"], "ok");
    let list = answer["apply_list"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    for item in list {
        for key in [
            "appid",
            "status",
            "nickname",
            "headimgurl",
            "reason",
            "apply_url",
            "create_time",
            "categories",
        ] {
            assert!(item.get(key).is_some(), "{key} missing in {item}");
        }
        assert!(
            item["create_time"].is_string(),
            "create_time is a string as in the example"
        );
    }
    let page2 = devplugin(
        &sb,
        &t,
        json!({"action": "dev_apply_list", "page": 2, "num": 2}),
    )
    .await;
    assert_eq!(page2["apply_list"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn faults_skip_then_fire_for_their_count() {
    let sb = sandbox(1).await;
    let t = token(&stable(&sb, false).await);
    sb.sandbox.inject(FaultRule {
        target: FaultTarget::Action("dev_apply_list".into()),
        fault: Fault::Errcode(45011),
        times: 2,
        skip: 1,
    });
    let list = json!({"action": "dev_apply_list", "page": 1, "num": 1});

    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(
            devplugin(&sb, &t, list.clone()).await["errcode"]
                .as_i64()
                .unwrap(),
        );
    }

    assert_eq!(codes, vec![0, 45011, 45011, 0]);
}

#[tokio::test]
async fn http_and_html_faults_answer_as_injected_and_apply_nothing() {
    let sb = sandbox(1).await;
    let t = token(&stable(&sb, false).await);
    let appid = sb.sandbox.applicants()[0].appid.clone();
    sb.sandbox.inject(FaultRule {
        target: FaultTarget::Any,
        fault: Fault::Http(503),
        times: 1,
        skip: 0,
    });
    sb.sandbox.inject(FaultRule {
        target: FaultTarget::Any,
        fault: Fault::NonJson,
        times: 1,
        skip: 0,
    });
    let client = reqwest::Client::new();
    let url = format!("{}/wxa/devplugin?access_token={t}", sb.base_url);
    let agree = json!({"action": "dev_agree", "appid": appid});

    let first = client.post(&url).json(&agree).send().await.unwrap();
    let second = client.post(&url).json(&agree).send().await.unwrap();

    assert_eq!(first.status(), 503);
    assert_eq!(second.status(), 200);
    assert!(second.text().await.unwrap().starts_with("<html>"));
    assert_eq!(sb.sandbox.applicant(&appid).unwrap().status, 1);
    assert_eq!(sb.sandbox.calls().len(), 2);
}

#[tokio::test]
async fn the_control_api_plays_the_console() {
    let sb = sandbox(0).await;
    let client = reqwest::Client::new();
    let base = format!("{}/__sandbox", sb.base_url);

    let added: Value = client
        .post(format!("{base}/applicants"))
        .json(&json!({"nickname": "控制台测试", "categories": [["工具", "记账"]]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let appid = added["appid"].as_str().unwrap().to_owned();
    let set = client
        .post(format!("{base}/applicants/{appid}/status"))
        .json(&json!({"status": 4}))
        .send()
        .await
        .unwrap();
    let unknown = client
        .post(format!("{base}/applicants/wxnope/status"))
        .json(&json!({"status": 4}))
        .send()
        .await
        .unwrap();
    let bad_fault = client
        .post(format!("{base}/faults"))
        .json(&json!({"target": "dev_agree", "kind": "explode"}))
        .send()
        .await
        .unwrap();
    let good_fault = client
        .post(format!("{base}/faults"))
        .json(&json!({"target": "token", "kind": "errcode", "errcode": 40164, "times": 1}))
        .send()
        .await
        .unwrap();
    let token_answer = stable(&sb, false).await;
    let listed: Value = client
        .get(format!("{base}/applicants"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stats: Value = client
        .get(format!("{base}/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let deleted = client
        .delete(format!("{base}/applicants/{appid}"))
        .send()
        .await
        .unwrap();

    assert_eq!(set.status(), 204);
    assert_eq!(unknown.status(), 404);
    assert_eq!(bad_fault.status(), 400);
    assert!(bad_fault.text().await.unwrap().contains("unknown kind"));
    assert_eq!(good_fault.status(), 204);
    assert_eq!(token_answer["errcode"], 40164);
    assert_eq!(listed[0]["nickname"], "控制台测试");
    assert_eq!(listed[0]["status"], 4);
    assert_eq!(listed[0]["categories"][0]["first"], "工具");
    assert_eq!(stats["stable_token_requests"], 1);
    assert_eq!(deleted.status(), 204);
    assert!(sb.sandbox.applicants().is_empty());
}

#[tokio::test]
async fn seeding_is_deterministic_and_realistic() {
    let a = Sandbox::new(SandboxConfig {
        applicants: 12,
        ..SandboxConfig::default()
    })
    .applicants();
    let b = Sandbox::new(SandboxConfig {
        applicants: 12,
        ..SandboxConfig::default()
    })
    .applicants();
    let c = Sandbox::new(SandboxConfig {
        applicants: 12,
        seed: 7,
        ..SandboxConfig::default()
    })
    .applicants();

    let ids = |v: &[wxplugin_bot::testbed::sandbox::SandboxApplicant]| {
        v.iter().map(|x| x.appid.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&b));
    assert_ne!(ids(&a), ids(&c));
    assert!(
        a.iter()
            .all(|x| x.appid.len() == 18 && x.appid.starts_with("wx") && x.status == 1)
    );
    assert!(
        a.windows(2).all(|w| w[0].create_time >= w[1].create_time),
        "newest first"
    );
    assert!(
        a.iter().any(|x| !x.nickname.is_ascii()),
        "some Chinese names"
    );
    assert!(
        a.iter().any(|x| x.nickname.is_ascii()),
        "some English names"
    );
}

#[tokio::test]
async fn new_applicants_arrive_on_schedule() {
    let sb = Sandbox::new(SandboxConfig {
        applicants: 0,
        arrival_every: Some(Duration::from_millis(50)),
        ..SandboxConfig::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let stopped = stop.clone();
    let server = tokio::spawn(
        sb.clone()
            .serve(listener, async move { stopped.cancelled().await }),
    );

    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.cancel();
    server.await.unwrap().unwrap();

    assert!(
        sb.applicants().len() >= 3,
        "{} arrived",
        sb.applicants().len()
    );
}

#[tokio::test]
async fn paging_knobs_cap_num_and_ignore_page_from_rust_and_the_control_api() {
    let sb = sandbox(7).await;
    let t = token(&stable(&sb, false).await);
    let all: Vec<String> = sb
        .sandbox
        .applicants()
        .into_iter()
        .map(|a| a.appid)
        .collect();

    sb.sandbox.set_paging(Paging {
        max_num: Some(3),
        ignore_page: false,
    });
    let capped = devplugin(&sb, &t, list(1, 10)).await;
    let capped_page_2 = devplugin(&sb, &t, list(2, 3)).await;
    let set = control(&sb, "paging", json!({"ignore_page": true})).await;
    let shown: Value = reqwest::get(format!("{}/__sandbox/paging", sb.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ignored = devplugin(&sb, &t, list(3, 2)).await;
    let zero = control(&sb, "paging", json!({"max_num": 0})).await;
    let typo = control(&sb, "paging", json!({"max": 2})).await;

    assert_eq!(listed(&capped), all[..3]);
    assert_eq!(listed(&capped_page_2), all[3..6]);
    assert_eq!(set.status(), 200);
    assert_eq!(shown, json!({"max_num": null, "ignore_page": true}));
    assert_eq!(listed(&ignored), all[..2], "page 3 answered as page 1");
    assert_eq!(zero.status(), 400);
    assert_eq!(typo.status(), 400);
    assert_eq!(
        sb.sandbox.paging(),
        Paging {
            max_num: None,
            ignore_page: true
        }
    );
}

#[tokio::test]
async fn empty_and_truncated_listings_answer_as_injected() {
    let sb = sandbox(4).await;
    let t = token(&stable(&sb, false).await);
    sb.sandbox.inject(fault("dev_apply_list", Fault::EmptyList));
    sb.sandbox
        .inject(fault("dev_apply_list", Fault::EmptyListArray));
    sb.sandbox
        .inject(fault("dev_apply_list", Fault::Truncate(1)));

    let absent = devplugin(&sb, &t, list(1, 10)).await;
    let empty = devplugin(&sb, &t, list(1, 10)).await;
    let truncated = devplugin(&sb, &t, list(1, 10)).await;
    let whole = devplugin(&sb, &t, list(1, 10)).await;

    assert_eq!(absent, json!({"errcode": 0, "errmsg": "ok"}));
    assert_eq!(
        empty,
        json!({"errcode": 0, "errmsg": "ok", "apply_list": []})
    );
    assert_eq!(truncated["errcode"], 0);
    assert_eq!(listed(&truncated), listed(&whole)[..1]);
    assert_eq!(listed(&whole).len(), 4);
    let codes: Vec<_> = sb.sandbox.calls().iter().map(|c| c.errcode).collect();
    assert_eq!(codes, vec![Some(0); 4]);
}

#[tokio::test]
async fn applied_then_errcode_applies_the_write_and_answers_the_code() {
    let sb = sandbox(2).await;
    let t = token(&stable(&sb, false).await);
    let [first, second] = [0, 1].map(|i| sb.sandbox.applicants()[i].appid.clone());
    sb.sandbox
        .inject(fault("dev_agree", Fault::AppliedThenErrcode(-1)));
    sb.sandbox
        .inject(fault("dev_refuse", Fault::AppliedThenErrcode(45011)));

    let agreed = devplugin(&sb, &t, json!({"action": "dev_agree", "appid": first})).await;
    let again = devplugin(&sb, &t, json!({"action": "dev_agree", "appid": first})).await;
    let refused = devplugin(
        &sb,
        &t,
        json!({"action": "dev_refuse", "appid": second, "reason": "no"}),
    )
    .await;

    assert_eq!(agreed["errcode"], -1);
    assert!(agreed["errmsg"].as_str().unwrap().contains("rid:"));
    assert_eq!(
        again["errcode"], 89240,
        "the busy answer hid an applied write"
    );
    assert_eq!(refused["errcode"], 45011);
    assert_eq!(sb.sandbox.applicant(&first).unwrap().status, 2);
    let refused_now = sb.sandbox.applicant(&second).unwrap();
    assert_eq!(
        (refused_now.status, refused_now.refuse_reason.as_deref()),
        (3, Some("no"))
    );
    let codes: Vec<_> = sb.sandbox.calls().iter().map(|c| c.errcode).collect();
    assert_eq!(codes, vec![Some(-1), Some(89240), Some(45011)]);
}

#[tokio::test]
async fn faults_for_one_kind_of_call_wait_for_it_and_the_control_api_checks_targets() {
    let sb = sandbox(1).await;
    let t = token(&stable(&sb, false).await);
    let appid = sb.sandbox.applicants()[0].appid.clone();
    // Aimed at every call, but only a listing can be emptied and only a write applied.
    sb.sandbox.inject(fault("any", Fault::EmptyList));
    sb.sandbox
        .inject(fault("any", Fault::AppliedThenErrcode(-1)));

    let token_answer = stable(&sb, false).await;
    let listing = devplugin(&sb, &t, list(1, 10)).await;
    let agreed = devplugin(&sb, &t, json!({"action": "dev_agree", "appid": appid})).await;
    let after = devplugin(&sb, &t, list(1, 10)).await;
    let mismatched = [
        json!({"target": "dev_agree", "kind": "truncate", "n": 1}),
        json!({"target": "token", "kind": "empty_list"}),
        json!({"target": "dev_apply_list", "kind": "applied_then_errcode", "errcode": -1}),
        json!({"target": "dev_apply_list", "kind": "truncate"}),
    ];
    let mut refusals = Vec::new();
    for body in mismatched {
        refusals.push(control(&sb, "faults", body).await.status());
    }
    let accepted = [
        json!({"target": "any", "kind": "empty_list_array"}),
        json!({"target": "dev_apply_list", "kind": "truncate", "n": 0, "skip": 1}),
        json!({"target": "dev_delete", "kind": "applied_then_errcode", "errcode": 89241}),
    ];
    let mut accepts = Vec::new();
    for body in accepted {
        accepts.push(control(&sb, "faults", body).await.status());
    }

    assert!(token_answer.get("access_token").is_some());
    assert_eq!(listing, json!({"errcode": 0, "errmsg": "ok"}));
    assert_eq!(agreed["errcode"], -1);
    assert_eq!(sb.sandbox.applicant(&appid).unwrap().status, 2);
    assert_eq!(listed(&after), vec![appid]);
    assert!(refusals.iter().all(|s| *s == 400), "{refusals:?}");
    assert!(accepts.iter().all(|s| *s == 204), "{accepts:?}");
}

#[tokio::test]
async fn the_hostile_answers_of_issue_22_are_injected_over_the_control_api() {
    let sb = sandbox(1).await;
    let base = format!("{}/__sandbox", sb.base_url);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let inject = |body: Value| {
        let http = http.clone();
        let url = format!("{base}/faults");
        async move { http.post(url).json(&body).send().await.unwrap().status() }
    };
    let d = SandboxConfig::default();
    let token_body =
        json!({"grant_type": "client_credential", "appid": d.appid, "secret": d.secret});
    let stable_raw = || {
        let http = http.clone();
        let url = format!("{}/cgi-bin/stable_token", sb.base_url);
        let body = token_body.clone();
        async move { http.post(url).json(&body).send().await.unwrap() }
    };

    let huge = inject(
        json!({"target": "token", "kind": "expires_in", "value": 9_223_372_036_854_775_808u64}),
    )
    .await;
    let huge_answer = stable_raw().await.text().await.unwrap();
    let redirect = inject(json!({"target": "token", "kind": "redirect", "status": 308, "location": "http://127.0.0.1:9/x"})).await;
    let redirected = stable_raw().await;
    let long =
        inject(json!({"target": "token", "kind": "long_errmsg", "errcode": 40164, "n": 4096}))
            .await;
    let long_answer: Value = stable_raw().await.json().await.unwrap();
    let raw =
        inject(json!({"target": "token", "kind": "body", "body": "{\"access_token\":5}"})).await;
    let raw_answer = stable_raw().await.text().await.unwrap();
    let big = inject(json!({"target": "token", "kind": "oversized", "n": 100_000})).await;
    let big_answer = stable_raw().await.bytes().await.unwrap();
    let wrong_list =
        inject(json!({"target": "dev_apply_list", "kind": "apply_list", "value": "nobody"})).await;
    let not_for_tokens =
        inject(json!({"target": "token", "kind": "apply_list", "value": {}})).await;
    let not_a_redirect =
        inject(json!({"target": "any", "kind": "redirect", "status": 200, "location": "/"})).await;
    let token = stable(&sb, false).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed: Value = http
        .post(format!(
            "{}/wxa/devplugin?access_token={token}",
            sb.base_url
        ))
        .json(&json!({"action": "dev_apply_list", "page": 1, "num": 10}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    for status in [huge, redirect, long, raw, big, wrong_list] {
        assert_eq!(status, 204);
    }
    assert_eq!(
        (not_for_tokens.as_u16(), not_a_redirect.as_u16()),
        (400, 400)
    );
    assert!(
        huge_answer.contains(r#""expires_in":9223372036854775808"#),
        "{huge_answer}"
    );
    assert_eq!(redirected.status(), 308);
    assert_eq!(redirected.headers()["location"], "http://127.0.0.1:9/x");
    assert_eq!(long_answer["errcode"], 40164);
    assert_eq!(
        long_answer["errmsg"].as_str().unwrap().chars().count(),
        4096
    );
    assert_eq!(raw_answer, r#"{"access_token":5}"#);
    assert!(big_answer.len() >= 100_000);
    assert_eq!(
        listed,
        json!({"errcode": 0, "errmsg": "ok", "apply_list": "nobody"})
    );
}

/// `POST` `body` to the sandbox's `path`, the JSON answer back (`Null` for an empty one).
async fn post(sb: &RunningSandbox, path: &str, body: Value) -> Value {
    let text = reqwest::Client::new()
        .post(format!("{}{path}", sb.base_url))
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_platforms_chain_answers_as_wechat_does_and_its_control_api_plays_the_owner() {
    let sb = sandbox(1).await;
    let d = SandboxConfig::default();
    let state: Value = reqwest::get(format!("{}/__sandbox/platform", sb.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticket = state["component_verify_ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let refresh = state["authorizer_refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let component = |ticket: &str| json!({"component_appid": d.component_appid, "component_appsecret": d.component_secret, "component_verify_ticket": ticket});

    // Ticket → component token → authorizer token → devplugin.
    let answer = post(
        &sb,
        "/cgi-bin/component/api_component_token",
        component(&ticket),
    )
    .await;
    let component_token = answer["component_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(answer["expires_in"], 7200);
    let exchange = |refresh: &str| json!({"component_appid": d.component_appid, "authorizer_appid": d.appid, "authorizer_refresh_token": refresh});
    let authorizer_path =
        format!("/cgi-bin/component/api_authorizer_token?component_access_token={component_token}");
    let answer = post(&sb, &authorizer_path, exchange(&refresh)).await;
    let token = answer["authorizer_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotated = answer["authorizer_refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rotated, refresh, "a new refresh token with every use");
    let listed = devplugin(
        &sb,
        &token,
        json!({"action": "dev_apply_list", "page": 1, "num": 10}),
    )
    .await;
    assert_eq!(listed["errcode"], 0, "{listed}");
    assert_eq!(listed["apply_list"].as_array().unwrap().len(), 1);

    // The replaced refresh token, an unknown ticket, an expired one, a revoked authorization.
    assert_eq!(
        post(&sb, &authorizer_path, exchange(&refresh)).await["errcode"],
        61023
    );
    assert_eq!(
        post(
            &sb,
            "/cgi-bin/component/api_component_token",
            component("made-up")
        )
        .await["errcode"],
        61006
    );
    post(&sb, "/__sandbox/platform/tickets/expire", Value::Null).await;
    assert_eq!(
        post(
            &sb,
            "/cgi-bin/component/api_component_token",
            component(&ticket)
        )
        .await["errcode"],
        61005
    );
    let fresh = post(&sb, "/__sandbox/platform/ticket", Value::Null).await;
    let fresh = fresh["component_verify_ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(fresh, ticket);
    assert!(
        post(
            &sb,
            "/cgi-bin/component/api_component_token",
            component(&fresh)
        )
        .await["component_access_token"]
            .is_string()
    );
    post(&sb, "/__sandbox/platform/revoke", Value::Null).await;
    assert_eq!(
        post(&sb, &authorizer_path, exchange(&rotated)).await["errcode"],
        61023
    );
    let again = post(&sb, "/__sandbox/platform/authorize", Value::Null).await;
    let again = again["authorizer_refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        post(&sb, &authorizer_path, exchange(&again)).await["authorizer_access_token"].is_string()
    );
    // A component token the sandbox never issued.
    assert_eq!(
        post(
            &sb,
            "/cgi-bin/component/api_authorizer_token?component_access_token=nope",
            exchange(&again)
        )
        .await["errcode"],
        40001
    );
    let stats = sb.sandbox.stats();
    assert_eq!(
        (
            stats.component_token_requests,
            stats.authorizer_token_requests
        ),
        (4, 5)
    );
}
