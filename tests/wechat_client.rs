//! The WeChat client against the sandbox over real HTTP on port 0: every action, every error code
//! the sandbox gives, paging (caps on num, ignored pages, undecodable items), tokens, retries,
//! unknown outcomes, writes that were never sent, and redaction.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::wx_fault;
use reqwest::Url;
use secrecy::SecretString;
use wxplugin_bot::domain::applicant::{AppId, ApplyStatus};
use wxplugin_bot::i18n::Lang;
use wxplugin_bot::testbed::sandbox::{
    Fault, FaultRule, NewApplicant, Paging, RunningSandbox, Sandbox, SandboxConfig,
};
use wxplugin_bot::wechat::{
    Authorizer, RefreshTokenKeeper, RetryPolicy, TokenMode, TransportKind, WeChatClient,
    WeChatConfig, WeChatError,
};

async fn sandbox(applicants: usize) -> RunningSandbox {
    Sandbox::spawn(SandboxConfig {
        applicants,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

fn config(sb: &RunningSandbox) -> WeChatConfig {
    let defaults = SandboxConfig::default();
    let mut config = WeChatConfig::new(
        Url::parse(&sb.base_url).unwrap(),
        defaults.appid,
        SecretString::from(defaults.secret),
    );
    config.request_timeout = Duration::from_millis(800);
    config.retry = RetryPolicy {
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retries: 3,
    };
    config
}

fn client(sb: &RunningSandbox) -> WeChatClient {
    WeChatClient::new(config(sb)).unwrap()
}

fn client_with(sb: &RunningSandbox, tweak: impl FnOnce(&mut WeChatConfig)) -> WeChatClient {
    let mut config = config(sb);
    tweak(&mut config);
    WeChatClient::new(config).unwrap()
}

fn pending(sb: &RunningSandbox) -> AppId {
    let appid = sb.sandbox.add_applicant(NewApplicant::default());
    AppId::parse(&appid).unwrap()
}

fn calls_of(sb: &RunningSandbox, action: &str) -> usize {
    sb.sandbox
        .calls()
        .iter()
        .filter(|c| c.action.as_deref() == Some(action))
        .count()
}

fn status_of(sb: &RunningSandbox, appid: &AppId) -> Option<i64> {
    sb.sandbox.applicant(appid.as_str()).map(|a| a.status)
}

fn appids(list: &[wxplugin_bot::domain::applicant::Applicant]) -> BTreeSet<String> {
    list.iter().map(|a| a.appid.to_string()).collect()
}

fn sandbox_appids(sb: &RunningSandbox) -> BTreeSet<String> {
    sb.sandbox
        .applicants()
        .into_iter()
        .map(|a| a.appid)
        .collect()
}

/// A base URL on which nothing listens.
fn closed_port_url() -> Url {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    Url::parse(&format!("http://{addr}")).unwrap()
}

#[tokio::test]
async fn lists_seeded_applicants_with_their_fields() {
    let sb = sandbox(5).await;
    let wx = client(&sb);

    let all = wx.list_all().await.unwrap();

    assert_eq!(all.len(), 5);
    let expected = sb.sandbox.applicants();
    for (got, want) in all.iter().zip(expected.iter()) {
        assert_eq!(got.appid.as_str(), want.appid);
        assert_eq!(got.status, ApplyStatus::Pending);
        assert_eq!(got.nickname.as_deref(), Some(want.nickname.as_str()));
        assert_eq!(
            got.applied_at.map(|t| t.as_second()),
            Some(want.create_time)
        );
        assert_eq!(got.categories.len(), want.categories.len());
    }
}

#[tokio::test]
async fn agree_approves_a_pending_applicant() {
    let sb = sandbox(0).await;
    let wx = client(&sb);
    let appid = pending(&sb);

    wx.agree(&appid).await.unwrap();

    assert_eq!(status_of(&sb, &appid), Some(2));
    let call = sb.sandbox.calls().into_iter().last().unwrap();
    assert_eq!(call.body["appid"], appid.as_str());
}

#[tokio::test]
async fn refuse_sends_appid_and_reason() {
    let sb = sandbox(0).await;
    let wx = client(&sb);
    let appid = pending(&sb);

    wx.refuse(&appid, "  类目不符 / wrong category ")
        .await
        .unwrap();

    assert_eq!(status_of(&sb, &appid), Some(3));
    let call = sb.sandbox.calls().into_iter().last().unwrap();
    assert_eq!(call.body["action"], "dev_refuse");
    assert_eq!(call.body["appid"], appid.as_str());
    assert_eq!(call.body["reason"], "类目不符 / wrong category");
}

#[tokio::test]
async fn refuse_without_reason_sends_nothing() {
    let sb = sandbox(0).await;
    let wx = client(&sb);
    let appid = pending(&sb);

    let err = wx.refuse(&appid, "   ").await.unwrap_err();

    assert!(matches!(err, WeChatError::InvalidRequest(_)), "{err:?}");
    assert_eq!(calls_of(&sb, "dev_refuse"), 0);
    assert_eq!(status_of(&sb, &appid), Some(1));
}

#[tokio::test]
async fn delete_removes_refused_and_expired_applicants() {
    let sb = sandbox(0).await;
    let wx = client(&sb);
    let refused = pending(&sb);
    let expired = pending(&sb);
    wx.refuse(&refused, "no").await.unwrap();
    assert!(sb.sandbox.set_status(expired.as_str(), 4));

    wx.delete(&refused).await.unwrap();
    wx.delete(&expired).await.unwrap();

    assert_eq!(status_of(&sb, &refused), None);
    assert_eq!(status_of(&sb, &expired), None);
    assert!(wx.list_all().await.unwrap().is_empty());
}

#[tokio::test]
async fn state_machine_errors_carry_errcode_and_meaning() {
    let sb = sandbox(0).await;
    let wx = client(&sb);
    let appid = pending(&sb);
    let stranger = AppId::parse("wx0000000000000000").unwrap();

    let delete_pending = wx.delete(&appid).await.unwrap_err();
    wx.agree(&appid).await.unwrap();
    let agree_again = wx.agree(&appid).await.unwrap_err();
    let refuse_approved = wx.refuse(&appid, "late").await.unwrap_err();
    let delete_approved = wx.delete(&appid).await.unwrap_err();
    let unknown_agree = wx.agree(&stranger).await.unwrap_err();
    let unknown_refuse = wx.refuse(&stranger, "x").await.unwrap_err();
    let unknown_delete = wx.delete(&stranger).await.unwrap_err();

    assert_eq!(delete_pending.errcode(), Some(89243));
    assert_eq!(agree_again.errcode(), Some(89240));
    assert_eq!(refuse_approved.errcode(), Some(89240));
    assert_eq!(delete_approved.errcode(), Some(89241));
    // Without an earlier -1, a stale-state answer is WeChat's plain word.
    for err in [&agree_again, &refuse_approved, &delete_approved] {
        assert!(matches!(err, WeChatError::Api { .. }), "{err:?}");
    }
    for err in [&unknown_agree, &unknown_refuse, &unknown_delete] {
        assert_eq!(err.errcode(), Some(89242));
    }
    assert_eq!(
        agree_again.meaning(Lang::Zh),
        Some("只有“待确认”的申请可操作通过/拒绝")
    );
    assert!(agree_again.to_string().contains("89240"));
    assert!(
        agree_again
            .to_string()
            .contains("only pending applications")
    );
    assert!(!agree_again.is_retryable_by_person());
}

#[tokio::test]
async fn paging_with_zero_one_exactly_num_and_many() {
    // A short page may be a cap on num, so the end is confirmed by an empty page: one call more
    // than counting pages when the listing ends on a short page (1 of 5, 23 of 5).
    for (count, page_size, expected_list_calls) in
        [(0, 5, 1), (1, 5, 2), (5, 5, 2), (23, 5, 6), (10, 1, 11)]
    {
        let sb = sandbox(count).await;
        let wx = client_with(&sb, |c| c.page_size = page_size);

        let all = wx.list_all().await.unwrap();

        assert_eq!(all.len(), count, "{count} applicants, pages of {page_size}");
        let mut ids: Vec<_> = all.iter().map(|a| a.appid.to_string()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count);
        assert_eq!(calls_of(&sb, "dev_apply_list"), expected_list_calls);
    }
}

#[tokio::test]
async fn an_applicant_arriving_while_paging_shifts_pages_without_duplicates() {
    let sb = sandbox(6).await;
    let before: Vec<String> = sb
        .sandbox
        .applicants()
        .into_iter()
        .map(|a| a.appid)
        .collect();
    // A new applicant applies just before page 2 is served: the last item of page 1 shows up
    // again at the top of page 2.
    sb.sandbox.inject(FaultRule {
        skip: 1,
        ..wx_fault("dev_apply_list", Fault::NewApplicantFirst, 1)
    });
    let wx = client_with(&sb, |c| c.page_size = 3);

    let all = wx.list_all().await.unwrap();

    let ids: Vec<String> = all.iter().map(|a| a.appid.to_string()).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "no applicant twice: {ids:?}");
    for id in &before {
        assert!(ids.contains(id), "{id} was lost while paging");
    }
}

#[tokio::test]
async fn no_applicant_is_missed_whatever_cap_wechat_puts_on_num() {
    // 137 applicants, pages of 50. Under a cap c < 50: page 1 brings c (short: a cap or the end),
    // pages of c follow, and the last short page is confirmed by an empty one of size
    // gcd(137, remainder) = 1 (137 is prime). Without a cap: 50, 50, 37, then the empty page.
    for (cap, expected_calls) in [
        (Some(1), 1 + 136 + 1),
        (Some(10), 1 + 12 + 1 + 1),
        (Some(20), 1 + 5 + 1 + 1),
        (Some(50), 4),
        (None, 4),
    ] {
        let sb = sandbox(137).await;
        sb.sandbox.set_paging(Paging {
            max_num: cap,
            ignore_page: false,
        });
        let wx = client_with(&sb, |c| c.page_size = 50);

        let all = wx.list_all().await.unwrap();

        assert_eq!(all.len(), 137, "cap {cap:?}: nobody twice");
        assert_eq!(appids(&all), sandbox_appids(&sb), "cap {cap:?}");
        assert_eq!(
            calls_of(&sb, "dev_apply_list"),
            expected_calls,
            "cap {cap:?}"
        );
        assert_eq!(wx.page_cap(), cap.filter(|c| *c < 50), "cap {cap:?}");
        assert!(!wx.paging_broken());
    }
}

#[tokio::test]
async fn a_wechat_that_ignores_page_is_read_three_times_and_said_to_be_broken() {
    // Page 1 brings newcomers; pages 2 and 3 repeat them: two full pages in a row with nobody new
    // (one alone can be applicants arriving while paging). Under a cap of 10, page 1 is short
    // first, then pages of 10 repeat it.
    for (cap, listed) in [(None, 50), (Some(10), 10)] {
        let sb = sandbox(137).await;
        sb.sandbox.set_paging(Paging {
            max_num: cap,
            ignore_page: true,
        });
        let wx = client_with(&sb, |c| c.page_size = 50);

        let partial = wx.list_all().await.unwrap();

        assert_eq!(calls_of(&sb, "dev_apply_list"), 3, "cap {cap:?}");
        let first_page: Vec<String> = sb
            .sandbox
            .applicants()
            .into_iter()
            .take(listed)
            .map(|a| a.appid)
            .collect();
        let got: Vec<String> = partial.iter().map(|a| a.appid.to_string()).collect();
        assert_eq!(got, first_page, "cap {cap:?}");
        assert!(wx.paging_broken(), "cap {cap:?}");

        sb.sandbox.set_paging(Paging::default());
        let all = wx.list_all().await.unwrap();

        assert_eq!(appids(&all), sandbox_appids(&sb), "cap {cap:?}");
        assert!(!wx.paging_broken(), "paging works again, cap {cap:?}");
    }
}

#[tokio::test]
async fn a_listing_that_met_page_one_twice_proves_no_absence_even_when_later_pages_come_right() {
    // WeChat ignores `page` for one call mid-listing (simulation seed 50514): page 2 repeats
    // page 1, page 3 is right, page 4 is empty. Page 2's applicants were never read, and the
    // listing ends as normally as a whole one: it must not pass for complete.
    let sb = sandbox(9).await;
    sb.sandbox.inject(FaultRule {
        skip: 1,
        ..wx_fault("dev_apply_list", Fault::FirstPage, 1)
    });
    let wx = client_with(&sb, |c| c.page_size = 3);

    let listing = wx.list_all_checked().await.unwrap();

    // In WeChat's order: page 2 is the fourth to sixth.
    let order: Vec<String> = sb
        .sandbox
        .applicants()
        .into_iter()
        .map(|a| a.appid)
        .collect();
    let expected: BTreeSet<String> = order[..3].iter().chain(&order[6..]).cloned().collect();
    assert_eq!(appids(&listing.applicants), expected);
    assert_eq!(calls_of(&sb, "dev_apply_list"), 4);
    assert!(
        !listing.complete,
        "page 2's applicants were never read, yet the listing says it is complete"
    );
    assert!(!wx.paging_broken(), "one repeated page is no broken paging");

    let whole = wx.list_all_checked().await.unwrap();

    assert_eq!(appids(&whole.applicants), sandbox_appids(&sb));
    assert!(whole.complete);
}

#[tokio::test]
async fn after_page_was_ignored_a_full_first_page_then_an_empty_one_proves_no_absence() {
    // WeChat ignored `page`; then a listing meets a full page 1 and an empty page 2 (an empty
    // answer, or paging working again with exactly one page of applicants): it cannot tell
    // which (simulation seeds 55521 and 55531 closed live cards as gone on two such listings).
    let sb = sandbox(6).await;
    sb.sandbox.set_paging(Paging {
        max_num: None,
        ignore_page: true,
    });
    let wx = client_with(&sb, |c| c.page_size = 3);
    assert!(!wx.list_all_checked().await.unwrap().complete);
    assert!(wx.paging_broken());
    sb.sandbox.set_paging(Paging::default());
    sb.sandbox.inject(FaultRule {
        skip: 1,
        ..wx_fault("dev_apply_list", Fault::EmptyList, 1)
    });

    let glitched = wx.list_all_checked().await.unwrap();

    assert_eq!(glitched.applicants.len(), 3);
    assert!(
        !glitched.complete,
        "page 2 answered empty right after paging was broken: no proof of absence"
    );

    // Paging that brings newcomers past page 1 shows it works: complete again, and so is the
    // next listing ending the same way.
    let whole = wx.list_all_checked().await.unwrap();
    assert_eq!(appids(&whole.applicants), sandbox_appids(&sb));
    assert!(whole.complete);
    assert!(!wx.paging_broken());
    sb.sandbox.inject(FaultRule {
        skip: 1,
        ..wx_fault("dev_apply_list", Fault::EmptyList, 1)
    });
    assert!(
        wx.list_all_checked().await.unwrap().complete,
        "with paging working, one empty page is a glitch the absence proof's two listings absorb"
    );
}

#[tokio::test]
async fn one_applicant_arriving_while_paging_one_by_one_is_not_taken_for_broken_paging() {
    // Pages of one item: an arrival before page 2 makes page 2 repeat page 1's item.
    let sb = sandbox(3).await;
    let before = sandbox_appids(&sb);
    sb.sandbox.set_paging(Paging {
        max_num: Some(1),
        ignore_page: false,
    });
    sb.sandbox.inject(FaultRule {
        skip: 1,
        ..wx_fault("dev_apply_list", Fault::NewApplicantFirst, 1)
    });
    let wx = client_with(&sb, |c| c.page_size = 50);

    let all = wx.list_all().await.unwrap();

    assert!(!wx.paging_broken());
    // The newcomer is the next listing's; everyone who was there is read.
    assert_eq!(appids(&all), before);
    assert_eq!(calls_of(&sb, "dev_apply_list"), 5);
}

#[tokio::test]
async fn one_undecodable_item_in_a_full_page_does_not_hide_later_pages() {
    // Newest first: page 1 is four good items and one whose appid AppId::parse refuses.
    let sb = sandbox(0).await;
    for _ in 0..7 {
        pending(&sb);
    }
    sb.sandbox.add_applicant(NewApplicant {
        appid: Some("not an appid!".into()),
        ..NewApplicant::default()
    });
    for _ in 0..4 {
        pending(&sb);
    }
    let wx = client_with(&sb, |c| c.page_size = 5);

    let all = wx.list_all().await.unwrap();

    let mut expected = sandbox_appids(&sb);
    expected.remove("not an appid!");
    assert_eq!(appids(&all), expected);
    assert_eq!(all.len(), 11);
    // 5, 5, 2 items sent; 12 = 6 pages of 2, so the empty page 7 of 2 ends it.
    assert_eq!(calls_of(&sb, "dev_apply_list"), 4);
    let last = sb.sandbox.calls().into_iter().last().unwrap();
    assert_eq!(
        (&last.body["page"], &last.body["num"]),
        (&7.into(), &2.into())
    );
}

#[tokio::test]
async fn an_absent_or_empty_apply_list_is_an_empty_listing() {
    for fault in [Fault::EmptyList, Fault::EmptyListArray] {
        let sb = sandbox(3).await;
        sb.sandbox
            .inject(wx_fault("dev_apply_list", fault.clone(), 1));
        let wx = client(&sb);

        let empty = wx.list_all().await.unwrap();
        let full = wx.list_all().await.unwrap();

        assert!(empty.is_empty(), "{fault:?}");
        assert_eq!(full.len(), 3, "{fault:?}");
        assert_eq!(calls_of(&sb, "dev_apply_list"), 1 + 2, "{fault:?}");
    }
}

#[tokio::test]
async fn a_truncated_page_is_read_on_by_position() {
    let sb = sandbox(3).await;
    sb.sandbox
        .inject(wx_fault("dev_apply_list", Fault::Truncate(1), 1));
    let wx = client(&sb);

    let all = wx.list_all().await.unwrap();

    assert_eq!(appids(&all), sandbox_appids(&sb));
    // Page 1 sends 1 of 3, then pages of 1 at positions 1 and 2, then the empty position 3.
    assert_eq!(calls_of(&sb, "dev_apply_list"), 4);
}

#[tokio::test]
async fn a_server_that_never_sends_a_short_page_is_cut_off() {
    let sb = sandbox(10).await;
    let wx = client_with(&sb, |c| {
        c.page_size = 1;
        c.max_pages = 3;
    });

    let err = wx.list_all().await.unwrap_err();

    assert!(
        matches!(err, WeChatError::TooManyPages { pages: 3 }),
        "{err:?}"
    );
    assert_eq!(calls_of(&sb, "dev_apply_list"), 3);
}

#[tokio::test]
async fn expired_token_mid_run_is_refreshed_once_and_the_call_succeeds() {
    let sb = sandbox(2).await;
    let wx = client(&sb);
    wx.list_all().await.unwrap();
    assert_eq!(sb.sandbox.stats().stable_token_requests, 1);

    sb.sandbox.expire_tokens();
    let all = wx.list_all().await.unwrap();

    assert_eq!(all.len(), 2);
    assert_eq!(sb.sandbox.stats().stable_token_requests, 2);
    let answered: Vec<_> = sb.sandbox.calls().iter().map(|c| c.errcode).collect();
    // Each listing of 2 ends with the empty page that tells the end from a cap.
    assert_eq!(
        answered,
        vec![Some(0), Some(0), Some(42001), Some(0), Some(0)]
    );
}

#[tokio::test]
async fn revoked_token_on_a_write_is_refreshed_and_the_write_goes_through_once() {
    let sb = sandbox(0).await;
    let wx = client(&sb);
    let appid = pending(&sb);
    wx.list_all().await.unwrap();

    sb.sandbox.revoke_tokens();
    wx.agree(&appid).await.unwrap();

    assert_eq!(status_of(&sb, &appid), Some(2));
    let agrees: Vec<_> = sb
        .sandbox
        .calls()
        .into_iter()
        .filter(|c| c.action.as_deref() == Some("dev_agree"))
        .map(|c| c.errcode)
        .collect();
    assert_eq!(agrees, vec![Some(40001), Some(0)]);
}

#[tokio::test]
async fn a_token_that_keeps_failing_is_retried_only_once() {
    let sb = sandbox(1).await;
    let wx = client(&sb);
    sb.sandbox
        .inject(wx_fault("dev_apply_list", Fault::Errcode(40014), 5));

    let err = wx.list_all().await.unwrap_err();

    assert_eq!(err.errcode(), Some(40014));
    assert!(err.is_token_error());
    assert_eq!(calls_of(&sb, "dev_apply_list"), 2);
    assert_eq!(sb.sandbox.stats().stable_token_requests, 2);
}

#[tokio::test]
async fn hundred_concurrent_calls_share_one_token_request() {
    let sb = sandbox(1).await;
    let wx = Arc::new(client(&sb));

    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let wx = Arc::clone(&wx);
            tokio::spawn(async move { wx.apply_list(1, 10).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().len(), 1);
    }

    assert_eq!(sb.sandbox.stats().stable_token_requests, 1);
    assert_eq!(calls_of(&sb, "dev_apply_list"), 100);
}

#[tokio::test]
async fn a_write_that_times_out_reports_unknown_outcome_and_is_not_resent() {
    let sb = sandbox(0).await;
    let wx = client(&sb);
    let appid = pending(&sb);
    sb.sandbox.inject(wx_fault(
        "dev_agree",
        Fault::Delay(Duration::from_millis(1500)),
        1,
    ));

    let err = wx.agree(&appid).await.unwrap_err();

    assert!(
        matches!(
            err,
            WeChatError::OutcomeUnknown {
                action: "dev_agree",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable_by_person());
    assert_eq!(
        calls_of(&sb, "dev_agree"),
        1,
        "the write must not be resent"
    );
    // The sandbox applied it: re-reading shows the truth.
    let now = wx.list_all().await.unwrap();
    assert_eq!(now[0].status, ApplyStatus::Approved);
}

#[tokio::test]
async fn a_write_answered_with_http_500_is_an_unknown_outcome_sent_once() {
    let sb = sandbox(0).await;
    let wx = client(&sb);
    let appid = pending(&sb);
    sb.sandbox
        .inject(wx_fault("dev_refuse", Fault::Http(500), 3));

    let err = wx.refuse(&appid, "no").await.unwrap_err();

    assert!(matches!(err, WeChatError::OutcomeUnknown { .. }), "{err:?}");
    assert_eq!(calls_of(&sb, "dev_refuse"), 1);
}

#[tokio::test]
async fn a_write_answered_system_busy_is_resent() {
    let sb = sandbox(0).await;
    let wx = client(&sb);
    let appid = pending(&sb);
    sb.sandbox
        .inject(wx_fault("dev_agree", Fault::Errcode(-1), 2));

    wx.agree(&appid).await.unwrap();

    assert_eq!(calls_of(&sb, "dev_agree"), 3);
    assert_eq!(status_of(&sb, &appid), Some(2));
}

#[tokio::test]
async fn a_resend_after_a_busy_answer_that_finds_it_done_is_an_unknown_outcome() {
    let sb = sandbox(0).await;
    let wx = client(&sb);
    let appid = pending(&sb);
    sb.sandbox
        .inject(wx_fault("dev_agree", Fault::AppliedThenErrcode(-1), 1));

    let err = wx.agree(&appid).await.unwrap_err();

    match &err {
        WeChatError::OutcomeUnknown {
            action: "dev_agree",
            cause,
            ..
        } => assert!(
            matches!(**cause, WeChatError::Api { code: 89240, .. }),
            "{cause:?}"
        ),
        other => panic!("expected an unknown outcome, got {other:?}"),
    }
    assert_eq!(err.errcode(), Some(89240));
    assert!(err.is_retryable_by_person());
    assert_eq!(
        status_of(&sb, &appid),
        Some(2),
        "the busy write was applied"
    );
    let answers: Vec<_> = sb
        .sandbox
        .calls()
        .into_iter()
        .filter(|c| c.action.as_deref() == Some("dev_agree"))
        .map(|c| c.errcode)
        .collect();
    assert_eq!(answers, vec![Some(-1), Some(89240)]);
}

#[tokio::test]
async fn a_write_whose_token_cannot_be_fetched_is_not_sent_and_says_so() {
    let sb = sandbox(0).await;
    let wx = client(&sb);
    let appid = pending(&sb);
    sb.sandbox.inject(wx_fault("token", Fault::Http(502), 10));

    let err = wx.agree(&appid).await.unwrap_err();

    match &err {
        WeChatError::NotSent {
            action: "dev_agree",
            appid: whom,
            cause,
        } => {
            assert_eq!(whom, appid.as_str());
            assert!(
                matches!(**cause, WeChatError::Http { status: 502 }),
                "{cause:?}"
            );
        }
        other => panic!("expected NotSent, got {other:?}"),
    }
    assert_eq!(err.errcode(), None);
    assert!(err.is_retryable_by_person());
    assert!(err.to_string().contains("nothing reached WeChat"), "{err}");
    assert_eq!(calls_of(&sb, "dev_agree"), 0);
    assert_eq!(
        sb.sandbox.stats().stable_token_requests,
        4,
        "1 try + 3 retries"
    );
    assert_eq!(status_of(&sb, &appid), Some(1));
}

#[tokio::test]
async fn a_write_to_a_closed_port_is_not_sent() {
    let appid = AppId::parse("wx1234567890abcdef").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("access_token");
    std::fs::write(&token_file, "central-token").unwrap();
    // Classic mode fails fetching the token; file mode has one and fails connecting to devplugin.
    for mode in [TokenMode::Classic, TokenMode::File(token_file)] {
        let mut config = WeChatConfig::new(
            closed_port_url(),
            "wx5a4db0c0ffee0001".into(),
            SecretString::from("s3cret-never-printed"),
        );
        config.retry.min_delay = Duration::from_millis(1);
        config.retry.max_delay = Duration::from_millis(2);
        config.token_mode = mode.clone();
        let wx = WeChatClient::new(config).unwrap();

        let err = wx.refuse(&appid, "no").await.unwrap_err();

        match &err {
            WeChatError::NotSent { cause, .. } => assert!(
                matches!(
                    **cause,
                    WeChatError::Transport {
                        kind: TransportKind::Connect,
                        ..
                    }
                ),
                "{mode:?}: {cause:?}"
            ),
            other => panic!("{mode:?}: expected NotSent, got {other:?}"),
        }
        assert!(err.is_retryable_by_person());
        assert!(!format!("{err} {err:?}").contains("central-token"));
    }
}

#[tokio::test]
async fn a_write_rate_limited_is_not_resent() {
    let sb = sandbox(0).await;
    let wx = client(&sb);
    let appid = pending(&sb);
    sb.sandbox
        .inject(wx_fault("dev_agree", Fault::Errcode(45011), 1));

    let err = wx.agree(&appid).await.unwrap_err();

    assert_eq!(err.errcode(), Some(45011));
    assert!(err.is_retryable_by_person());
    assert_eq!(calls_of(&sb, "dev_agree"), 1);
    assert_eq!(status_of(&sb, &appid), Some(1));
}

#[tokio::test]
async fn reads_retry_busy_rate_limit_5xx_and_bad_bodies() {
    for f in [
        Fault::Errcode(-1),
        Fault::Errcode(45011),
        Fault::Http(502),
        Fault::NonJson,
    ] {
        let sb = sandbox(2).await;
        let wx = client(&sb);
        sb.sandbox.inject(wx_fault("dev_apply_list", f.clone(), 2));

        let all = wx.list_all().await.unwrap();

        assert_eq!(all.len(), 2, "{f:?}");
        // Two faulted calls, page 1, and the empty page after the short one.
        assert_eq!(calls_of(&sb, "dev_apply_list"), 4, "{f:?}");
    }
}

#[tokio::test]
async fn reads_give_up_after_the_retry_budget_with_a_clear_error() {
    let sb = sandbox(1).await;
    let wx = client(&sb);
    sb.sandbox
        .inject(wx_fault("dev_apply_list", Fault::NonJson, 10));

    let err = wx.list_all().await.unwrap_err();

    match &err {
        WeChatError::Decode { status, detail } => {
            assert_eq!(*status, 200);
            assert!(detail.contains("HTML"), "{detail}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert_eq!(calls_of(&sb, "dev_apply_list"), 4, "1 try + 3 retries");
}

#[tokio::test]
async fn reads_do_not_retry_daily_quota_or_other_errcodes() {
    let sb = sandbox(1).await;
    let wx = client(&sb);
    sb.sandbox
        .inject(wx_fault("dev_apply_list", Fault::Errcode(45009), 5));

    let err = wx.list_all().await.unwrap_err();

    assert_eq!(err.errcode(), Some(45009));
    assert_eq!(err.meaning(Lang::En), Some("daily API quota exhausted"));
    assert_eq!(calls_of(&sb, "dev_apply_list"), 1);
}

#[tokio::test]
async fn every_injected_errcode_comes_back_with_its_meaning() {
    let sb = sandbox(1).await;
    let wx = client(&sb);
    for code in [47001, 48001, 61007, 89236, 89237, 89238, 89239, 89044] {
        sb.sandbox
            .inject(wx_fault("dev_apply_list", Fault::Errcode(code), 1));

        let err = wx.apply_list(1, 10).await.unwrap_err();

        assert_eq!(err.errcode(), Some(code));
        assert!(err.meaning(Lang::Zh).is_some() && err.meaning(Lang::En).is_some());
    }
}

#[tokio::test]
async fn wrong_secret_and_wrong_appid_are_configuration_errors_with_hints() {
    let sb = sandbox(1).await;
    let wrong_secret = client_with(&sb, |c| c.secret = SecretString::from("nope"));
    let wrong_appid = client_with(&sb, |c| c.appid = "wx9999999999999999".into());

    let secret_err = wrong_secret.list_all().await.unwrap_err();
    let appid_err = wrong_appid.list_all().await.unwrap_err();

    assert_eq!(secret_err.errcode(), Some(40125));
    assert!(secret_err.is_config_error());
    assert!(secret_err.hint().unwrap().contains("WECHAT_SECRET"));
    assert_eq!(appid_err.errcode(), Some(40013));
    assert!(appid_err.hint().unwrap().contains("WECHAT_APPID"));
    assert_eq!(calls_of(&sb, "dev_apply_list"), 0);
}

#[tokio::test]
async fn ip_not_whitelisted_is_reported_with_the_whitelist_hint() {
    let sb = sandbox(1).await;
    let wx = client(&sb);
    sb.sandbox
        .inject(wx_fault("token", Fault::Errcode(40164), 1));

    let err = wx.list_all().await.unwrap_err();

    assert_eq!(err.errcode(), Some(40164));
    assert!(err.is_config_error());
    assert!(err.hint().unwrap().contains("whitelist"));
}

#[tokio::test]
async fn a_token_endpoint_outage_is_retried_for_writes_too_since_nothing_was_sent() {
    let sb = sandbox(0).await;
    let wx = client(&sb);
    let appid = pending(&sb);
    sb.sandbox.inject(wx_fault("token", Fault::Http(503), 2));

    wx.agree(&appid).await.unwrap();

    assert_eq!(status_of(&sb, &appid), Some(2));
    assert_eq!(calls_of(&sb, "dev_agree"), 1);
}

#[tokio::test]
async fn classic_mode_fetches_from_the_classic_endpoint() {
    let sb = sandbox(2).await;
    let wx = client_with(&sb, |c| c.token_mode = TokenMode::Classic);

    assert_eq!(wx.list_all().await.unwrap().len(), 2);

    let stats = sb.sandbox.stats();
    assert_eq!(stats.classic_token_requests, 1);
    assert_eq!(stats.stable_token_requests, 0);
}

async fn force_refreshed_token(sb: &RunningSandbox) -> String {
    let defaults = SandboxConfig::default();
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/cgi-bin/stable_token", sb.base_url))
        .json(&serde_json::json!({
            "grant_type": "client_credential",
            "appid": defaults.appid,
            "secret": defaults.secret,
            "force_refresh": true
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn file_mode_reads_the_central_token_and_rereads_it_after_a_token_error() {
    let sb = sandbox(1).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access_token");
    std::fs::write(&path, force_refreshed_token(&sb).await).unwrap();
    let wx = client_with(&sb, |c| c.token_mode = TokenMode::File(path.clone()));
    assert_eq!(wx.list_all().await.unwrap().len(), 1);

    // The central service refreshes: our token dies, the file gets the new one.
    let fresh = force_refreshed_token(&sb).await;
    std::fs::write(
        &path,
        format!("{{\"access_token\":\"{fresh}\",\"expires_in\":7200}}"),
    )
    .unwrap();
    let all = wx.list_all().await.unwrap();

    assert_eq!(all.len(), 1);
    let stats = sb.sandbox.stats();
    assert_eq!(
        stats.stable_token_requests, 2,
        "only the test's own fetches"
    );
}

#[tokio::test]
async fn file_mode_with_a_missing_file_is_a_configuration_error() {
    let sb = sandbox(1).await;
    let wx = client_with(&sb, |c| {
        c.token_mode = TokenMode::File("/nonexistent/wx/token".into());
    });

    let err = wx.list_all().await.unwrap_err();

    assert!(matches!(err, WeChatError::TokenFile { .. }), "{err:?}");
    assert!(err.is_config_error());
    assert!(err.to_string().contains("/nonexistent/wx/token"));
}

#[tokio::test]
async fn unreachable_wechat_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut config = WeChatConfig::new(
        Url::parse(&format!("http://{addr}")).unwrap(),
        "wx5a4db0c0ffee0001".into(),
        SecretString::from("s3cret-never-printed"),
    );
    config.retry.min_delay = Duration::from_millis(1);
    config.retry.max_delay = Duration::from_millis(2);
    config.token_mode = TokenMode::Classic;
    let wx = WeChatClient::new(config).unwrap();

    let err = wx.list_all().await.unwrap_err();

    assert!(matches!(err, WeChatError::Transport { .. }), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("s3cret-never-printed"), "{shown}");
}

#[tokio::test]
async fn no_error_text_ever_holds_the_secret_or_the_token() {
    let sb = sandbox(0).await;
    let wx = client(&sb);
    let appid = pending(&sb);
    wx.list_all().await.unwrap();
    let token = sb.sandbox.current_token().unwrap();
    let secret = SandboxConfig::default().secret;
    sb.sandbox.inject(wx_fault(
        "dev_agree",
        Fault::Delay(Duration::from_millis(1500)),
        1,
    ));
    sb.sandbox
        .inject(wx_fault("dev_apply_list", Fault::Http(500), 10));

    let timeout = wx.agree(&appid).await.unwrap_err();
    let http = wx.list_all().await.unwrap_err();

    for err in [timeout, http] {
        let shown = format!("{err} | {err:?}");
        assert!(!shown.contains(&token), "token leaked: {shown}");
        assert!(!shown.contains(&secret), "secret leaked: {shown}");
    }
}

// ---------- hostile and broken answers (issue 22) ----------

#[tokio::test]
async fn a_token_lifetime_beyond_any_clock_is_capped_at_what_wechat_documents() {
    for huge in [
        "9223372036854775808",
        "18446744073709551615",
        "99999999999999999999999",
        "1e300",
    ] {
        let sb = sandbox(1).await;
        sb.sandbox
            .inject(wx_fault("token", Fault::ExpiresIn(huge.to_owned()), 1));
        let wx = client(&sb);

        let listed = wx.list_all().await;

        assert_eq!(listed.map(|l| l.len()).ok(), Some(1), "{huge}");
        let refresh_in = wx.tokens().state().await.refresh_in_secs;
        assert!(
            refresh_in.is_some_and(|s| s <= 7200 - 300),
            "{huge}: refresh in {refresh_in:?}"
        );
    }
}

#[tokio::test]
async fn a_token_lifetime_that_means_nothing_is_a_token_error() {
    for nonsense in ["-5", "0", "-9223372036854775809", "\"soon\"", "{}", "true"] {
        let sb = sandbox(1).await;
        sb.sandbox.inject(wx_fault(
            "token",
            Fault::ExpiresIn(nonsense.to_owned()),
            100,
        ));
        let wx = client(&sb);

        let err = wx.list_all().await.unwrap_err();

        assert!(
            matches!(err, WeChatError::Decode { .. }),
            "{nonsense}: {err:?}"
        );
        assert!(err.to_string().contains("expires_in"), "{nonsense}: {err}");
        assert_eq!(calls_of(&sb, "dev_apply_list"), 0, "{nonsense}");
    }
}

/// A listener on 127.0.0.1 port 0 that counts the connections it gets.
async fn bystander() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reached = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = reached.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    (addr, reached)
}

#[tokio::test]
async fn no_answer_that_redirects_is_followed_and_the_error_names_where_it_pointed() {
    let cases = [
        ("stable_token", "token", TokenMode::Stable, 307),
        ("stable_token", "token", TokenMode::Stable, 308),
        ("classic token", "token", TokenMode::Classic, 302),
        ("dev_apply_list", "dev_apply_list", TokenMode::Stable, 307),
        ("dev_agree", "dev_agree", TokenMode::Stable, 308),
    ];
    for (name, target, mode, status) in cases {
        let sb = sandbox(0).await;
        let appid = pending(&sb);
        let (addr, reached) = bystander().await;
        let location = format!("http://{addr}/stolen");
        sb.sandbox.inject(wx_fault(
            target,
            Fault::Redirect(status, location.clone()),
            100,
        ));
        let wx = client_with(&sb, |c| c.token_mode = mode);

        let err = if target == "dev_agree" {
            wx.agree(&appid).await.unwrap_err()
        } else {
            wx.list_all().await.unwrap_err()
        };
        tokio::time::sleep(Duration::from_millis(100)).await;

        assert_eq!(
            reached.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "{name} {status}: the redirect was followed"
        );
        let shown = err.to_string();
        assert!(
            shown.contains(&location) && shown.contains(&status.to_string()),
            "{name} {status}: {shown}"
        );
        assert_eq!(status_of(&sb, &appid), Some(1), "{name}");
    }
}

#[tokio::test]
async fn a_listing_that_is_not_a_list_is_a_failed_read_not_an_empty_one() {
    for wrong in [
        "\"nobody\"",
        "{}",
        "{\"appid\":\"wx1234567890abcdef\"}",
        "42",
        "true",
    ] {
        let sb = sandbox(3).await;
        sb.sandbox.inject(wx_fault(
            "dev_apply_list",
            Fault::ApplyList(wrong.to_owned()),
            100,
        ));
        let wx = client(&sb);

        let err = wx.list_all().await.unwrap_err();

        assert!(
            matches!(err, WeChatError::Decode { .. }),
            "{wrong}: {err:?}"
        );
        assert!(err.to_string().contains("apply_list"), "{wrong}: {err}");
    }
    // `null` is what many serializers write for an empty list: it stays an empty listing.
    let sb = sandbox(3).await;
    sb.sandbox.inject(wx_fault(
        "dev_apply_list",
        Fault::ApplyList("null".into()),
        1,
    ));
    assert_eq!(client(&sb).list_all().await.unwrap().len(), 0);
}

#[tokio::test]
async fn a_4kb_errmsg_is_cut_before_it_reaches_any_text() {
    let sb = sandbox(1).await;
    sb.sandbox.inject(wx_fault(
        "dev_apply_list",
        Fault::LongErrmsg(48001, 4096),
        1,
    ));
    let wx = client(&sb);

    let err = wx.list_all().await.unwrap_err();

    assert_eq!(err.errcode(), Some(48001));
    let errmsg = err.errmsg().unwrap_or_default();
    assert!(
        errmsg.chars().count() <= 201 && errmsg.ends_with('…'),
        "{} chars",
        errmsg.chars().count()
    );
    assert!(errmsg.starts_with("api unauthorized"), "{errmsg}");
    for text in [
        err.to_string(),
        wxplugin_bot::telegram::view::wechat_error_text(&err, Lang::En),
    ] {
        assert!(text.chars().count() < 500, "{} chars", text.chars().count());
    }
}

#[tokio::test]
async fn an_answer_larger_than_the_cap_is_refused_and_says_so() {
    let oversized = 9 * 1024 * 1024;
    for target in ["dev_apply_list", "token"] {
        let sb = sandbox(1).await;
        sb.sandbox
            .inject(wx_fault(target, Fault::Oversized(oversized), 100));
        let wx = client(&sb);

        let err = wx.list_all().await.unwrap_err();

        assert!(
            matches!(err, WeChatError::Decode { .. }),
            "{target}: {err:?}"
        );
        assert!(err.to_string().contains("8 MiB"), "{target}: {err}");
    }
}

#[tokio::test]
async fn a_token_answer_of_the_wrong_shape_never_echoes_its_values() {
    for (body, values) in [
        (
            r#"{"access_token":98765432109876543,"expires_in":7200}"#,
            &["98765432109876543"][..],
        ),
        (
            r#"{"access_token":["tok-leak-1"],"expires_in":7200}"#,
            &["tok-leak-1"][..],
        ),
        (
            r#"{"access_token":"tok-leak-2","expires_in":"leak-3"}"#,
            &["tok-leak-2", "leak-3"][..],
        ),
        (
            r#"{"errcode":"leak-4","errmsg":7,"access_token":"tok-leak-5"}"#,
            &["leak-4", "tok-leak-5"][..],
        ),
        (
            r#"{"access_token":{"token":"tok-leak-6"},"expires_in":7200}"#,
            &["tok-leak-6"][..],
        ),
    ] {
        let sb = sandbox(1).await;
        sb.sandbox
            .inject(wx_fault("token", Fault::Body(body.to_owned()), 100));
        let wx = client(&sb);

        let err = wx.list_all().await.unwrap_err();

        let shown = format!("{err} | {err:?}");
        for value in values {
            assert!(!shown.contains(value), "{body} echoed {value}: {shown}");
        }
        assert!(matches!(err, WeChatError::Decode { .. }), "{body}: {err:?}");
    }
}

/// A sandbox answering as WeChat does inside Cloud Run's cloud call, and a client in `cloudrun`
/// mode pointed at it.
async fn cloud_run(applicants: usize) -> (RunningSandbox, WeChatClient) {
    let sb = Sandbox::spawn(SandboxConfig {
        applicants,
        cloud_run: true,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts");
    let client = client_with(&sb, |c| {
        c.token_mode = TokenMode::CloudRun;
        c.secret = SecretString::from(String::new());
    });
    (sb, client)
}

#[tokio::test]
async fn cloud_run_mode_calls_with_no_token_and_fetches_none() {
    let (sb, client) = cloud_run(3).await;
    let listed = client.list_all().await.unwrap();
    assert_eq!(appids(&listed), sandbox_appids(&sb));
    let appid = AppId::parse(listed[0].appid.as_str()).unwrap();
    client.agree(&appid).await.unwrap();
    assert_eq!(status_of(&sb, &appid), Some(2));
    let stats = sb.sandbox.stats();
    assert_eq!(
        (stats.stable_token_requests, stats.classic_token_requests),
        (0, 0),
        "no token is fetched in cloudrun mode"
    );
    assert!(!client.answered_outside_cloud_run());
    assert_eq!(client.tokens().state().await.mode, "cloudrun");
}

#[tokio::test]
async fn cloud_run_mode_outside_cloud_run_is_41001_with_what_to_do() {
    // The same client against a WeChat that is not Cloud Run's: the call has no token.
    let sb = sandbox(1).await;
    let client = client_with(&sb, |c| c.token_mode = TokenMode::CloudRun);
    let error = client.list_all().await.unwrap_err();
    assert_eq!(error.errcode(), Some(41001), "{error}");
    assert!(error.is_config_error());
    assert!(
        error.hint().unwrap_or_default().contains("开放接口服务"),
        "{error:?}"
    );
    assert_eq!(
        calls_of(&sb, "dev_apply_list"),
        1,
        "a config error is not retried"
    );
}

#[tokio::test]
async fn cloud_run_whitelist_and_readiness_errors_say_what_to_do() {
    let (sb, client) = cloud_run(1).await;
    sb.sandbox
        .inject(wx_fault("dev_apply_list", Fault::Errcode(85107), 1));
    let error = client.list_all().await.unwrap_err();
    assert_eq!(error.errcode(), Some(85107));
    assert!(error.is_config_error());
    assert!(
        error.hint().unwrap_or_default().contains("/wxa/devplugin"),
        "{error:?}"
    );
    assert!(
        error
            .meaning(Lang::Zh)
            .unwrap_or_default()
            .contains("微信令牌"),
        "{error:?}"
    );

    sb.sandbox
        .inject(wx_fault("dev_apply_list", Fault::Errcode(85113), 1));
    let error = client.list_all().await.unwrap_err();
    assert_eq!(error.errcode(), Some(85113));
    assert!(!error.is_config_error(), "not ready yet passes by itself");
    assert!(
        error
            .meaning(Lang::En)
            .unwrap_or_default()
            .contains("not ready"),
        "{error:?}"
    );
    // Once ready, the same client lists.
    assert_eq!(client.list_all().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_success_without_the_cloud_calls_header_is_noticed() {
    // A WeChat that answers errcode 0 but is not Cloud Run's cloud call (no x-openapi-seqid).
    let sb = sandbox(0).await;
    let client = client_with(&sb, |c| c.token_mode = TokenMode::CloudRun);
    sb.sandbox.inject(wx_fault(
        "dev_apply_list",
        Fault::Body(r#"{"errcode":0,"errmsg":"ok","apply_list":[]}"#.to_owned()),
        1,
    ));
    assert!(client.list_all().await.unwrap().is_empty());
    assert!(client.answered_outside_cloud_run());
}

/// Records what the chain hands it to keep, and answers with the newest kept token (or the
/// configured one): a store, without the database.
#[derive(Default)]
struct Kept(std::sync::Mutex<Vec<String>>);

impl RefreshTokenKeeper for Kept {
    fn current<'a>(
        &'a self,
        _: &'a str,
        configured: &'a str,
    ) -> wxplugin_bot::wechat::Kept<'a, String> {
        let newest = self.0.lock().unwrap().last().cloned();
        Box::pin(async move { Ok(newest.unwrap_or_else(|| configured.to_owned())) })
    }

    fn keep<'a>(&'a self, _: &'a str, token: &'a str) -> wxplugin_bot::wechat::Kept<'a, ()> {
        self.0.lock().unwrap().push(token.to_owned());
        Box::pin(async { Ok(()) })
    }
}

/// A client in authorizer mode against `sb`, its ticket file in `dir` holding the sandbox's
/// ticket, and the owner's refresh token as the sandbox has it now.
fn platform_client(
    sb: &RunningSandbox,
    dir: &tempfile::TempDir,
    keeper: Arc<Kept>,
) -> (WeChatClient, std::path::PathBuf) {
    let defaults = SandboxConfig::default();
    let ticket_file = dir.path().join("ticket");
    std::fs::write(&ticket_file, format!("  {}\n", sb.sandbox.ticket())).unwrap();
    let mut config = config(sb);
    config.secret = SecretString::from(String::new());
    config.token_mode = TokenMode::Authorizer(Authorizer {
        component_appid: defaults.component_appid,
        component_secret: SecretString::from(defaults.component_secret),
        ticket_file: ticket_file.clone(),
        refresh_token: SecretString::from(sb.sandbox.authorizer_refresh_token().unwrap()),
    });
    (
        WeChatClient::with_keeper(config, keeper).unwrap(),
        ticket_file,
    )
}

#[tokio::test]
async fn authorizer_mode_fetches_each_token_once_and_keeps_the_refresh_token_returned() {
    let sb = sandbox(3).await;
    let dir = tempfile::tempdir().unwrap();
    let keeper = Arc::new(Kept::default());
    let (client, _) = platform_client(&sb, &dir, Arc::clone(&keeper));

    // Ten calls at once: one component token, one authorizer token.
    let lists = futures::future::join_all((0..10).map(|_| client.list_all())).await;
    for list in lists {
        assert_eq!(list.unwrap().len(), 3);
    }
    let stats = sb.sandbox.stats();
    assert_eq!(
        (
            stats.component_token_requests,
            stats.authorizer_token_requests
        ),
        (1, 1)
    );
    assert_eq!(
        stats.stable_token_requests + stats.classic_token_requests,
        0
    );
    // The sandbox rotated the refresh token; the one returned is kept.
    let rotated = sb.sandbox.authorizer_refresh_token().unwrap();
    assert_eq!(*keeper.0.lock().unwrap(), std::slice::from_ref(&rotated));

    // The authorizer token is refused: a new one is bought with the kept refresh token (the
    // configured one no longer works), the component token still cached.
    sb.sandbox.revoke_tokens();
    assert_eq!(client.list_all().await.unwrap().len(), 3);
    let stats = sb.sandbox.stats();
    assert_eq!(
        (
            stats.component_token_requests,
            stats.authorizer_token_requests
        ),
        (1, 2)
    );
    assert_eq!(keeper.0.lock().unwrap().len(), 2);
    assert_ne!(sb.sandbox.authorizer_refresh_token().unwrap(), rotated);
}

#[tokio::test]
async fn a_replaced_ticket_file_is_read_when_a_component_token_is_next_needed() {
    let sb = sandbox(1).await;
    let dir = tempfile::tempdir().unwrap();
    let (client, ticket_file) = platform_client(&sb, &dir, Arc::new(Kept::default()));
    assert_eq!(client.list_all().await.unwrap().len(), 1);

    // Hours pass: every token WeChat issued has expired and so has the ticket in the file.
    sb.sandbox.expire_tickets();
    sb.sandbox.advance_clock(Duration::from_secs(3 * 3600));
    let error = client.list_all().await.unwrap_err();
    assert_eq!(error.errcode(), Some(61005), "{error}");
    assert!(error.is_config_error());
    assert!(
        error.hint().unwrap_or_default().contains("ticket receiver"),
        "{error:?}"
    );

    // The platform's receiver writes the newly pushed ticket: taken at the next call.
    let fresh = sb.sandbox.push_ticket();
    std::fs::write(&ticket_file, &fresh).unwrap();
    assert_eq!(client.list_all().await.unwrap().len(), 1);

    // A ticket WeChat never pushed.
    sb.sandbox.advance_clock(Duration::from_secs(3 * 3600));
    std::fs::write(&ticket_file, "not-a-ticket").unwrap();
    assert_eq!(client.list_all().await.unwrap_err().errcode(), Some(61006));
    // An empty file names the file and the receiver.
    std::fs::write(&ticket_file, "\n \n").unwrap();
    let error = client.list_all().await.unwrap_err();
    assert!(matches!(error, WeChatError::TicketFile { .. }), "{error:?}");
    assert!(error.to_string().contains("ticket receiver"), "{error}");
}

#[tokio::test]
async fn a_revoked_authorization_is_61023_with_what_the_owner_must_do() {
    let sb = sandbox(1).await;
    let dir = tempfile::tempdir().unwrap();
    let (client, _) = platform_client(&sb, &dir, Arc::new(Kept::default()));
    assert_eq!(client.list_all().await.unwrap().len(), 1);

    sb.sandbox.revoke_authorization();
    sb.sandbox.revoke_tokens();
    let error = client.list_all().await.unwrap_err();
    assert_eq!(error.errcode(), Some(61023), "{error}");
    assert!(error.is_config_error());
    assert!(
        error
            .hint()
            .unwrap_or_default()
            .contains("WECHAT_AUTHORIZER_REFRESH_TOKEN"),
        "{error:?}"
    );
}

/// [`Kept`], whose writes take a while: a database under load.
struct SlowKept(Kept, Duration);

impl RefreshTokenKeeper for SlowKept {
    fn current<'a>(
        &'a self,
        authorizer_appid: &'a str,
        configured: &'a str,
    ) -> wxplugin_bot::wechat::Kept<'a, String> {
        self.0.current(authorizer_appid, configured)
    }

    fn keep<'a>(
        &'a self,
        authorizer_appid: &'a str,
        token: &'a str,
    ) -> wxplugin_bot::wechat::Kept<'a, ()> {
        Box::pin(async move {
            tokio::time::sleep(self.1).await;
            self.0.keep(authorizer_appid, token).await
        })
    }
}

#[tokio::test]
async fn a_replica_whose_refresh_token_another_just_traded_takes_the_newer_one() {
    let sb = sandbox(1).await;
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(SlowKept(Kept::default(), Duration::from_millis(400)));
    std::fs::write(dir.path().join("ticket"), sb.sandbox.ticket()).unwrap();
    let replica = |keeper: Arc<SlowKept>| {
        let defaults = SandboxConfig::default();
        let mut config = config(&sb);
        config.token_mode = TokenMode::Authorizer(Authorizer {
            component_appid: defaults.component_appid,
            component_secret: SecretString::from(defaults.component_secret),
            ticket_file: dir.path().join("ticket"),
            refresh_token: SecretString::from(sb.sandbox.authorizer_refresh_token().unwrap()),
        });
        WeChatClient::with_keeper(config, keeper).unwrap()
    };
    let first = replica(Arc::clone(&shared));
    let second = replica(Arc::clone(&shared));

    // The first trades the refresh token and is still writing the new one down when the second
    // presents the old one.
    let (a, b) = tokio::join!(first.list_all(), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        second.list_all().await
    });

    assert_eq!(a.unwrap().len(), 1);
    assert_eq!(
        b.unwrap().len(),
        1,
        "a refusal of a just-replaced token is no revocation"
    );
    assert_eq!(sb.sandbox.stats().authorizer_token_requests, 3);
    assert_eq!(
        shared.0.0.lock().unwrap().last().cloned(),
        sb.sandbox.authorizer_refresh_token()
    );
}
