//! Realistic applicants for the sandbox: Chinese and English mini-program names, WeChat's category
//! pairs, reasons in both languages (a few with `<`, `&` and quotes, so escaping gets exercised).
//! Deterministic for a given seed.

use serde::{Deserialize, Serialize};

use super::{NewApplicant, SandboxApplicant};

/// One category pair, as WeChat sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// 一级类目.
    pub first: String,
    /// 二级类目.
    pub second: String,
}

const NICKNAMES: &[&str] = &[
    "小鹿记账",
    "青柠健身",
    "Tidewater Fitness",
    "街角咖啡 Corner Café",
    "云朵天气",
    "Maple Reading Club",
    "拾光相册",
    "快马跑腿",
    "Pocket Vet",
    "番茄外卖",
    "橙子学堂",
    "Harbor Bike Share",
    "森林停车",
    "Lingo Flashcards",
    "好邻居家政",
    "北极星打卡",
    "Blue Whale Tickets",
    "小熊优选",
    "Night Owl Notes",
    "稻香食堂",
    "Summit Climbing Gym",
    "蜂巢快递柜",
    "Paper Crane Gifts",
    "山海旅拍",
];

const CATEGORIES: &[(&str, &str)] = &[
    ("工具", "记账"),
    ("教育", "在线教育"),
    ("IT科技", "硬件与设备"),
    ("生活服务", "家政"),
    ("餐饮", "点餐平台"),
    ("商家自营", "服装/鞋/箱包"),
    ("体育", "体育场馆服务"),
    ("旅游", "旅游攻略"),
    ("工具", "天气"),
    ("出行与交通", "共享单车"),
    ("快递业与邮政", "快递、物流"),
    ("文娱", "资讯"),
];

const REASONS: &[&str] = &[
    "我们需要在下单页展示地图选点，想接入贵插件。",
    "用于会员积分兑换页面，预计日活 2000。",
    "We'd like to show live delivery tracking on our order page.",
    "Needed for our class booking flow; we serve about 40 gyms.",
    "门店 <自提> & 配送 两种模式都需要用到定位能力",
    "Our \"Smart Reminder\" feature depends on this plugin's calendar component.",
    "测试接入，上线前会再确认。",
    "We run a non-profit reading club & want the reader plugin for members <18.",
];

/// The deterministic source of applicants and tokens.
pub struct Generator {
    rng: fastrand::Rng,
}

impl Generator {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    fn alnum(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| CHARS[self.rng.usize(..CHARS.len())] as char)
            .collect()
    }

    fn appid(&mut self) -> String {
        format!("wx{:016x}", self.rng.u64(..))
    }

    /// A fresh access token.
    pub fn token(&mut self) -> String {
        format!("SBX_{}", self.alnum(72))
    }

    /// `count` pending applicants, newest first, applied over the last few days before `now`.
    pub fn seeded(&mut self, count: usize, now: i64) -> Vec<SandboxApplicant> {
        let mut at = now;
        (0..count)
            .map(|_| {
                at -= self.rng.i64(600..30_000);
                self.applicant(NewApplicant {
                    create_time: Some(at),
                    ..NewApplicant::default()
                })
            })
            .collect()
    }

    /// An applicant, with `new`'s fields where given.
    pub fn applicant(&mut self, new: NewApplicant) -> SandboxApplicant {
        let nickname = new
            .nickname
            .unwrap_or_else(|| NICKNAMES[self.rng.usize(..NICKNAMES.len())].to_owned());
        let reason = new
            .reason
            .unwrap_or_else(|| REASONS[self.rng.usize(..REASONS.len())].to_owned());
        let categories = match new.categories {
            Some(pairs) => pairs
                .into_iter()
                .map(|(first, second)| Category { first, second })
                .collect(),
            None => {
                // Some applicants list no category, as WeChat allows.
                let n = self.rng.usize(0..3);
                (0..n)
                    .map(|_| {
                        let (first, second) = CATEGORIES[self.rng.usize(..CATEGORIES.len())];
                        Category {
                            first: first.to_owned(),
                            second: second.to_owned(),
                        }
                    })
                    .collect()
            }
        };
        SandboxApplicant {
            appid: new.appid.unwrap_or_else(|| self.appid()),
            status: new.status.unwrap_or(super::apply_status::PENDING),
            nickname,
            headimgurl: format!("https://mmbiz.qpic.cn/mmbiz_png/{}/0", self.alnum(22)),
            reason,
            apply_url: format!(
                "https://mmbiz.qpic.cn/mmbiz_jpg/{}/0?wx_fmt=jpeg",
                self.alnum(22)
            ),
            create_time: new
                .create_time
                .unwrap_or_else(|| jiff::Timestamp::now().as_second()),
            categories,
            refuse_reason: None,
        }
    }
}
