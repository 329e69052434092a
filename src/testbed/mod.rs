//! What is not the bot but ships with it: a WeChat sandbox that speaks `/wxa/devplugin`, a fake
//! Telegram Bot API, and the demo that runs the real bot against both. Nothing in the bot's own
//! layers imports these; tests, benchmarks and the `sandbox`/`demo` commands do.

pub mod demo;
pub mod fake_telegram;
pub mod sandbox;
