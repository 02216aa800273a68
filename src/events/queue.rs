//! An SQS queue of change events, as a user names it: by its URL, which
//! says its account and, for AWS's own endpoints, its region.

use std::fmt;

/// A queue to read change events from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queue {
    /// The QueueUrl, as given.
    pub url: String,
    pub account: String,
    pub name: String,
    /// The region the URL's host names (`sqs.<region>.amazonaws.com`, the
    /// legacy `<region>.queue.amazonaws.com`, or a VPC endpoint's
    /// `….sqs.<region>.vpce.amazonaws.com`); `None` for another host (an
    /// emulator), read in the operator's region.
    pub region: Option<String>,
}

impl Queue {
    /// The queue of `url`: `https://sqs.<region>.amazonaws.com/<account>/<name>`
    /// ("Amazon SQS queue and message identifiers", SQS Developer Guide).
    pub fn parse(url: &str) -> Result<Self, String> {
        let refused = |why: &str| {
            Err(format!(
                "{url:?} is not an SQS queue URL ({why}); one looks like \
                 https://sqs.us-east-1.amazonaws.com/123456789012/ssm-changes"
            ))
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return refused("no scheme");
        };
        if scheme != "https" && scheme != "http" {
            return refused("not http or https");
        }
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut parts = path.trim_end_matches('/').split('/');
        let (Some(account), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
            return refused("its path is not /<account>/<queue name>");
        };
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return refused("no 12-digit account in its path");
        }
        // "Queue names are limited to 80 characters. Alphanumeric
        // characters, hyphens (-), and underscores (_) are allowed", and a
        // FIFO queue's name ends in `.fifo` (SQS API Reference, CreateQueue).
        let base = name.strip_suffix(".fifo").unwrap_or(name);
        let named = (1..=80).contains(&name.len())
            && !base.is_empty()
            && base
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !named {
            return refused("not a queue name");
        }
        if host.is_empty() {
            return refused("no host");
        }
        Ok(Self {
            url: url.to_owned(),
            account: account.to_owned(),
            name: name.to_owned(),
            region: region_of(host),
        })
    }
}

impl fmt::Display for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// The region an AWS SQS endpoint's host names.
fn region_of(host: &str) -> Option<String> {
    let host = host.split(':').next().unwrap_or(host);
    let labels: Vec<&str> = host.split('.').collect();
    let aws = host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn");
    if !aws {
        return None;
    }
    let region = labels.windows(2).find_map(|pair| match pair {
        ["sqs", region] => Some(*region),
        [region, "queue"] => Some(*region),
        _ => None,
    })?;
    let looks_like_region =
        region.contains('-') && region.bytes().last().is_some_and(|b| b.is_ascii_digit());
    looks_like_region.then(|| region.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_url_tells_its_account_name_and_region() {
        let queue =
            Queue::parse("https://sqs.eu-west-1.amazonaws.com/111122223333/ssm-changes").unwrap();
        assert_eq!(queue.account, "111122223333");
        assert_eq!(queue.name, "ssm-changes");
        assert_eq!(queue.region.as_deref(), Some("eu-west-1"));
        for (url, region) in [
            (
                "https://us-east-2.queue.amazonaws.com/111122223333/q",
                Some("us-east-2"),
            ),
            (
                "https://sqs.cn-north-1.amazonaws.com.cn/111122223333/q",
                Some("cn-north-1"),
            ),
            (
                "https://vpce-0a1b-2c3d.sqs.ap-northeast-1.vpce.amazonaws.com/111122223333/q.fifo",
                Some("ap-northeast-1"),
            ),
            ("http://127.0.0.1:4566/111122223333/q", None),
        ] {
            assert_eq!(
                Queue::parse(url).unwrap().region.as_deref(),
                region,
                "{url}"
            );
        }
    }

    #[test]
    fn what_is_not_a_queue_url_is_refused_saying_why() {
        for (url, why) in [
            ("sqs.us-east-1.amazonaws.com/111122223333/q", "no scheme"),
            (
                "ftp://sqs.us-east-1.amazonaws.com/111122223333/q",
                "not http or https",
            ),
            (
                "https://sqs.us-east-1.amazonaws.com/q",
                "/<account>/<queue name>",
            ),
            (
                "https://sqs.us-east-1.amazonaws.com/1111/q",
                "12-digit account",
            ),
            (
                "https://sqs.us-east-1.amazonaws.com/111122223333/a.b",
                "not a queue name",
            ),
            (
                "https://sqs.us-east-1.amazonaws.com/111122223333/q/x",
                "/<account>/<queue name>",
            ),
        ] {
            let refused = Queue::parse(url).unwrap_err();
            assert!(refused.contains(why), "{url}: {refused}");
        }
    }
}
