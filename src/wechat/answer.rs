//! Decoding a `dev_apply_list` answer straight from its bytes. A list of 10,000 applicants is
//! read on every poll, so the answer is not built into a `serde_json::Value` first (a map per
//! item, a string per key); each field is read leniently as WeChat sends it (numbers as strings
//! and the other way round), and anything of the wrong shape is skipped without being built.

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::domain::applicant::{AppId, Applicant, ApplyStatus, Category};

/// A JSON value read leniently: a number or a string is kept, anything else is skipped.
#[derive(Debug, PartialEq)]
enum Loose {
    Int(i64),
    /// An integer beyond `i64`.
    Big(u64),
    Float(f64),
    Str(String),
    Other,
}

impl Loose {
    /// A number, or a string holding one.
    fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(n) => Some(*n),
            Self::Big(n) => Some(*n as f64 as i64),
            Self::Float(f) => Some(*f as i64),
            Self::Str(s) => s.trim().parse().ok(),
            Self::Other => None,
        }
    }

    /// A string, or a number written as one (as `serde_json` writes it).
    fn into_string(self) -> Option<String> {
        match self {
            Self::Str(s) => Some(s),
            Self::Int(n) => Some(n.to_string()),
            Self::Big(n) => Some(n.to_string()),
            Self::Float(f) => serde_json::Number::from_f64(f).map(|n| n.to_string()),
            Self::Other => None,
        }
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Loose, E> {
        Ok(Loose::Other)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Loose, E> {
        Ok(Loose::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Loose, E> {
        Ok(i64::try_from(v).map_or(Loose::Big(v), Loose::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Loose, E> {
        Ok(Loose::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Loose, E> {
        Ok(Loose::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Loose, E> {
        Ok(Loose::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Loose, E> {
        Ok(Loose::Other)
    }
    fn visit_none<E>(self) -> Result<Loose, E> {
        Ok(Loose::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loose, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

/// Reads any JSON value: a map through `on_map`, a sequence through `on_seq`, anything else as
/// `T::default()`. The last of duplicate keys wins, as in `serde_json::Value`.
macro_rules! shape_visitor {
    ($name:ident, $out:ty, $expecting:literal, map: |$m:ident| $on_map:block, seq: |$s:ident| $on_seq:block) => {
        struct $name;
        impl<'de> Visitor<'de> for $name {
            type Value = $out;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str($expecting)
            }
            fn visit_bool<E>(self, _: bool) -> Result<$out, E> {
                Ok(<$out>::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<$out, E> {
                Ok(<$out>::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<$out, E> {
                Ok(<$out>::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<$out, E> {
                Ok(<$out>::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<$out, E> {
                Ok(<$out>::default())
            }
            fn visit_unit<E>(self) -> Result<$out, E> {
                Ok(<$out>::default())
            }
            fn visit_none<E>(self) -> Result<$out, E> {
                Ok(<$out>::default())
            }
            #[allow(unused_mut)]
            fn visit_map<A: MapAccess<'de>>(self, mut $m: A) -> Result<$out, A::Error> {
                $on_map
            }
            #[allow(unused_mut)]
            fn visit_seq<A: SeqAccess<'de>>(self, mut $s: A) -> Result<$out, A::Error> {
                $on_seq
            }
        }
        impl<'de> Deserialize<'de> for Shaped<$out> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any($name).map(Shaped)
            }
        }
    };
}

/// A value read through one of the shape visitors.
struct Shaped<T>(T);

fn drain_seq<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// The top level of an answer.
#[derive(Default)]
pub(crate) struct RawAnswer {
    errcode: Option<Loose>,
    errmsg: Option<Loose>,
    apply_list: ListShape,
}

/// What `apply_list` held.
#[derive(Default)]
enum ListShape {
    /// No `apply_list`, or `null`: an empty listing.
    #[default]
    Absent,
    /// A list; `None` for an item that is not an object.
    List(Vec<Option<RawItem>>),
    /// Anything else, by kind (named as `json_kind` names it): not a listing at all.
    Not(&'static str),
}

struct ListShapeVisitor;

impl<'de> Visitor<'de> for ListShapeVisitor {
    type Value = ListShape;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of applicants")
    }
    fn visit_bool<E>(self, _: bool) -> Result<ListShape, E> {
        Ok(ListShape::Not("true or false"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<ListShape, E> {
        Ok(ListShape::Not("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<ListShape, E> {
        Ok(ListShape::Not("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<ListShape, E> {
        Ok(ListShape::Not("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<ListShape, E> {
        Ok(ListShape::Not("a string"))
    }
    fn visit_unit<E>(self) -> Result<ListShape, E> {
        Ok(ListShape::Absent)
    }
    fn visit_none<E>(self) -> Result<ListShape, E> {
        Ok(ListShape::Absent)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ListShape, A::Error> {
        drain_map(&mut map)?;
        Ok(ListShape::Not("an object"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ListShape, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1000));
        while let Some(item) = seq.next_element::<Shaped<MaybeItem>>()? {
            items.push(item.0.0);
        }
        Ok(ListShape::List(items))
    }
}

impl<'de> Deserialize<'de> for ListShape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ListShapeVisitor)
    }
}

#[derive(Default)]
struct RawItem {
    appid: Option<Loose>,
    status: Option<Loose>,
    nickname: Option<Loose>,
    headimgurl: Option<Loose>,
    reason: Option<Loose>,
    apply_url: Option<Loose>,
    create_time: Option<Loose>,
    categories: Vec<Category>,
}

#[derive(Default)]
struct Categories(Vec<Category>);

#[derive(Default)]
struct MaybeItem(Option<RawItem>);

#[derive(Default)]
struct MaybeCategory(Option<Category>);

shape_visitor!(AnswerVisitor, RawAnswer, "an answer object",
map: |map| {
    let mut answer = RawAnswer::default();
    while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
        match key.as_ref() {
            "errcode" => answer.errcode = Some(map.next_value()?),
            "errmsg" => answer.errmsg = Some(map.next_value()?),
            "apply_list" => answer.apply_list = map.next_value()?,
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    Ok(answer)
},
seq: |seq| {
    drain_seq(&mut seq)?;
    Ok(RawAnswer::default())
});

shape_visitor!(ItemVisitor, MaybeItem, "an applicant",
map: |map| {
    let mut item = RawItem::default();
    while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
        let slot = match key.as_ref() {
            "appid" => &mut item.appid,
            "status" => &mut item.status,
            "nickname" => &mut item.nickname,
            "headimgurl" => &mut item.headimgurl,
            "reason" => &mut item.reason,
            "apply_url" => &mut item.apply_url,
            "create_time" => &mut item.create_time,
            "categories" => {
                item.categories = map.next_value::<Shaped<Categories>>()?.0 .0;
                continue;
            }
            _ => {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
        };
        *slot = Some(map.next_value()?);
    }
    Ok(MaybeItem(Some(item)))
},
seq: |seq| {
    drain_seq(&mut seq)?;
    Ok(MaybeItem(None))
});

shape_visitor!(CategoriesVisitor, Categories, "a list of categories",
map: |map| {
    drain_map(&mut map)?;
    Ok(Categories::default())
},
seq: |seq| {
    let mut out = Vec::new();
    while let Some(c) = seq.next_element::<Shaped<MaybeCategory>>()? {
        out.extend(c.0 .0);
    }
    Ok(Categories(out))
});

shape_visitor!(CategoryVisitor, MaybeCategory, "a category",
map: |map| {
    let (mut first, mut second) = (None, None);
    while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
        match key.as_ref() {
            "first" => first = Some(map.next_value::<Loose>()?),
            "second" => second = Some(map.next_value::<Loose>()?),
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    let first = first.and_then(Loose::into_string).unwrap_or_default();
    let second = second.and_then(Loose::into_string).unwrap_or_default();
    Ok(MaybeCategory(
        (!first.is_empty() || !second.is_empty()).then_some(Category { first, second }),
    ))
},
seq: |seq| {
    drain_seq(&mut seq)?;
    Ok(MaybeCategory(None))
});

impl RawAnswer {
    /// Parses a whole body; fails only on text that is not JSON.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice::<Shaped<RawAnswer>>(bytes).map(|s| s.0)
    }

    /// The errcode, when the answer has a usable one.
    pub(crate) fn errcode(&self) -> Option<i64> {
        self.errcode.as_ref().and_then(Loose::as_i64)
    }

    /// The errmsg, when it is a string.
    pub(crate) fn errmsg(&self) -> String {
        match &self.errmsg {
            Some(Loose::Str(s)) => s.clone(),
            _ => String::new(),
        }
    }

    /// The applicants, skipping (with a warning) items without a usable appid, and how many
    /// items `apply_list` held as sent: paging counts those, not the ones that decoded. An
    /// `apply_list` that is not a list (nor null) gives its kind instead.
    pub(crate) fn into_page(self) -> Result<(Vec<Applicant>, usize), &'static str> {
        let items = match self.apply_list {
            ListShape::Absent => Vec::new(),
            ListShape::List(items) => items,
            ListShape::Not(kind) => return Err(kind),
        };
        let sent = items.len();
        let applicants = items
            .into_iter()
            .filter_map(|item| {
                let decoded = item.and_then(RawItem::into_applicant);
                if decoded.is_none() {
                    tracing::warn!("skipping an apply_list item without a valid appid");
                }
                decoded
            })
            .collect();
        Ok((applicants, sent))
    }
}

impl RawItem {
    fn into_applicant(self) -> Option<Applicant> {
        let appid = AppId::parse(&self.appid?.into_string()?).ok()?;
        let status = self
            .status
            .as_ref()
            .and_then(Loose::as_i64)
            .map_or(ApplyStatus::Unknown(0), ApplyStatus::from_code);
        let text = |value: Option<Loose>| {
            value
                .and_then(Loose::into_string)
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let applied_at = self
            .create_time
            .as_ref()
            .and_then(Loose::as_i64)
            .and_then(application_time);
        Some(Applicant {
            appid,
            status,
            nickname: text(self.nickname),
            avatar_url: text(self.headimgurl),
            reason: text(self.reason),
            apply_url: text(self.apply_url),
            applied_at,
            categories: self.categories,
        })
    }
}

/// Above this a `create_time` cannot be seconds (it would be after the year 5000): it is taken
/// for milliseconds, which some of WeChat's answers use.
const MILLIS_ABOVE: i64 = 100_000_000_000;

/// An application time from WeChat's `create_time`: unix seconds, or milliseconds when it can
/// only be those; `None` for zero, negative or out-of-range values (the card says "unknown").
pub(crate) fn application_time(raw: i64) -> Option<jiff::Timestamp> {
    let secs = if raw > MILLIS_ABOVE { raw / 1000 } else { raw };
    (secs > 0)
        .then(|| jiff::Timestamp::from_second(secs).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::application_time;

    #[test]
    fn application_times_in_seconds_or_milliseconds() {
        let secs = |raw| application_time(raw).map(|t| t.as_second());
        assert_eq!(secs(1_536_305_096), Some(1_536_305_096));
        assert_eq!(secs(1_536_305_096_123), Some(1_536_305_096));
        assert_eq!(secs(0), None);
        assert_eq!(secs(-5), None);
        assert_eq!(secs(i64::MAX), None);
    }
}
