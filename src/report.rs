//! How a failure is told in one line: each cause of an error chain once. Most errors here quote
//! their source in their own message (`database: {0}`) and also return it as `source()`, so
//! printing the chain naively (`{:#}`) says the same cause two or three times.

use std::error::Error;

/// `error` and its causes joined by ": ", leaving out a cause whose text is already said.
pub fn one_line(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = e.source();
    }
    line
}

/// [`one_line`] for an `anyhow` error (its context lines and their causes).
pub fn one_line_anyhow(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for e in error.chain() {
        let text = e.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("inner: disk full")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("database: {0}")]
    struct Quoting(#[from] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("could not record the poll")]
    struct Silent(#[source] Inner);

    #[test]
    fn a_cause_already_quoted_is_not_repeated_and_one_not_quoted_is_added() {
        assert_eq!(one_line(&Quoting(Inner)), "database: inner: disk full");
        assert_eq!(
            one_line(&Silent(Inner)),
            "could not record the poll: inner: disk full"
        );
        let any = anyhow::Error::from(Quoting(Inner)).context("starting");
        assert_eq!(
            one_line_anyhow(&any),
            "starting: database: inner: disk full"
        );
    }
}
