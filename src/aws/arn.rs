//! Amazon Resource Names, `arn:<partition>:<service>:<region>:<account>:<resource>`
//! (AWS General Reference, "Amazon Resource Names"), and the names of
//! parameter requests, which may be ARNs and carry a `:version` or `:label`.

use std::borrow::Cow;

/// The parts of an ARN; `resource` keeps any colons of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// `None` when `text` is not an ARN of six parts.
    pub fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.strip_prefix("arn:")?.splitn(5, ':');
        let arn = Self {
            partition: parts.next()?,
            service: parts.next()?,
            region: parts.next()?,
            account: parts.next()?,
            resource: parts.next()?,
        };
        (!arn.partition.is_empty() && !arn.service.is_empty()).then_some(arn)
    }

    /// The parameter an SSM parameter ARN names, as SSM's own APIs spell it:
    /// `parameter/prd/db` is `/prd/db`, `parameter/db` is `db`.
    pub fn parameter_name(&self) -> Option<Cow<'a, str>> {
        if self.service != "ssm" {
            return None;
        }
        let bare = self.resource.strip_prefix("parameter/")?;
        Some(if bare.contains('/') {
            format!("/{bare}").into()
        } else {
            bare.into()
        })
    }
}

/// Whether two names are one parameter: "/TestParam1" and "TestParam1" are
/// the same parameter, "/Test/TestParam1" and "/TestParam1" are not (AWS
/// Systems Manager User Guide, "Requirements and constraints for parameter
/// names"). AWS answers with the name as stored, whichever way it was asked.
pub fn same_parameter(a: &str, b: &str) -> bool {
    canonical(a) == canonical(b)
}

/// A name without the leading slash a one-level name may be written with.
fn canonical(name: &str) -> &str {
    match name.strip_prefix('/') {
        Some(bare) if !bare.contains('/') => bare,
        _ => name,
    }
}

/// Whether `name` (a name or an SSM parameter ARN) is under `/aws/`, which
/// AWS reserves and the operator does not read:
/// `/aws/reference/secretsmanager/<id>` (a Secrets Manager secret through
/// SSM, answered only `WithDecryption=true` and without a version to probe,
/// so every refresh would be a decrypting read; "Referencing AWS Secrets
/// Manager secrets from Parameter Store parameters", AWS Systems Manager User
/// Guide) and `/aws/service/…` (public parameters AWS publishes, which hold
/// no secret).
pub fn is_aws_reserved(name: &str) -> bool {
    let name = Arn::parse(name)
        .and_then(|arn| arn.parameter_name())
        .unwrap_or(Cow::Borrowed(name));
    name.trim_start_matches('/').starts_with("aws/")
}

/// `name:3` → (`name`, Some(`3`)); an ARN keeps its own colons.
pub fn split_selector(name: &str) -> (&str, Option<&str>) {
    let name_start = match Arn::parse(name) {
        Some(arn) if arn.resource.starts_with("parameter/") => {
            name.len() - arn.resource.len() + "parameter/".len()
        }
        _ => 0,
    };
    match name[name_start..].find(':') {
        Some(i) => (&name[..name_start + i], Some(&name[name_start + i + 1..])),
        None => (name, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_under_aws_are_reserved_however_they_are_written() {
        assert!(is_aws_reserved("/aws/reference/secretsmanager/db"));
        assert!(is_aws_reserved("aws/service/global-infrastructure"));
        assert!(is_aws_reserved(
            "arn:aws:ssm:us-east-1:111122223333:parameter/aws/reference/secretsmanager/db"
        ));
        assert!(!is_aws_reserved("/awsome/db"));
        assert!(!is_aws_reserved("/prd/aws/db"));
        assert!(!is_aws_reserved(
            "arn:aws:ssm:us-east-1:111122223333:parameter/prd/db"
        ));
    }

    #[test]
    fn a_one_level_name_is_the_same_parameter_with_or_without_its_slash() {
        assert!(same_parameter("/db", "db"));
        assert!(same_parameter("db", "/db"));
        assert!(same_parameter("/prd/db", "/prd/db"));
        assert!(!same_parameter("/prd/db", "prd/db"));
        assert!(!same_parameter("/prd/db", "/db"));
    }

    #[test]
    fn an_arn_splits_into_its_six_parts() {
        let arn = Arn::parse("arn:aws-cn:ssm:cn-north-1:111122223333:parameter/a/b:3").unwrap();
        assert_eq!(
            (arn.partition, arn.service, arn.region, arn.account),
            ("aws-cn", "ssm", "cn-north-1", "111122223333")
        );
        assert_eq!(arn.resource, "parameter/a/b:3");
        assert_eq!(
            Arn::parse("arn:aws:iam::111122223333:role/x").map(|a| a.region),
            Some("")
        );
        assert_eq!(Arn::parse("prd-db-pass"), None);
        assert_eq!(Arn::parse("arn:aws:ssm"), None);
    }

    #[test]
    fn a_parameter_arn_names_its_parameter_as_ssm_spells_it() {
        let name = |text| Arn::parse(text).and_then(|a| a.parameter_name());
        assert_eq!(
            name("arn:aws:ssm:eu-west-1:111122223333:parameter/prd/db").as_deref(),
            Some("/prd/db")
        );
        assert_eq!(
            name("arn:aws:ssm:eu-west-1:111122223333:parameter/db").as_deref(),
            Some("db")
        );
        assert_eq!(name("arn:aws:kms:eu-west-1:111122223333:key/k"), None);
    }

    #[test]
    fn selectors_split_after_the_name_even_in_arns() {
        assert_eq!(split_selector("db:3"), ("db", Some("3")));
        assert_eq!(split_selector("/a/b:prod"), ("/a/b", Some("prod")));
        assert_eq!(
            split_selector("arn:aws:ssm:us-east-1:111122223333:parameter/a:2"),
            ("arn:aws:ssm:us-east-1:111122223333:parameter/a", Some("2"))
        );
        assert_eq!(
            split_selector("arn:aws:ssm:us-east-1:111122223333:parameter/a"),
            ("arn:aws:ssm:us-east-1:111122223333:parameter/a", None)
        );
    }
}
