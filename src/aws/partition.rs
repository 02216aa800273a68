//! The AWS partition a region belongs to: what its ARNs begin with and what
//! its service endpoints and principals end with.
//!
//! Source: the partitions file the AWS SDKs generate their endpoint rules
//! from (`partitions.json` in smithy-rs and every SDK), whose region patterns
//! are `^cn\-\w+\-\d+$` for `aws-cn` (DNS suffix `amazonaws.com.cn`),
//! `^us\-gov\-\w+\-\d+$` for `aws-us-gov` (`amazonaws.com`),
//! `^us\-iso\-\w+\-\d+$` for `aws-iso` (`c2s.ic.gov`), `^us\-isob\-\w+\-\d+$`
//! for `aws-iso-b` (`sc2s.sgov.gov`), `^eu\-isoe\-\w+\-\d+$` for `aws-iso-e`
//! (`cloud.adc-e.uk`), `^us\-isof\-\w+\-\d+$` for `aws-iso-f`
//! (`csp.hci.ic.gov`), `^eusc\-(de)\-\w+\-\d+$` for `aws-eusc`
//! (`amazonaws.eu`), and every other region in `aws` (`amazonaws.com`).

/// A partition by its ARN name and DNS suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    /// `aws`, `aws-cn`, …: the second part of every ARN in it.
    pub name: &'static str,
    /// `amazonaws.com`, `amazonaws.com.cn`, …: of `ssm.<region>.<suffix>`.
    pub dns_suffix: &'static str,
}

/// Region prefixes, most specific first (`us-isob-` before `us-iso-`).
const PARTITIONS: &[(&str, Partition)] = &[
    ("cn-", partition("aws-cn", "amazonaws.com.cn")),
    ("us-gov-", partition("aws-us-gov", "amazonaws.com")),
    ("us-isob-", partition("aws-iso-b", "sc2s.sgov.gov")),
    ("us-isof-", partition("aws-iso-f", "csp.hci.ic.gov")),
    ("us-iso-", partition("aws-iso", "c2s.ic.gov")),
    ("eu-isoe-", partition("aws-iso-e", "cloud.adc-e.uk")),
    ("eusc-", partition("aws-eusc", "amazonaws.eu")),
];

const AWS: Partition = partition("aws", "amazonaws.com");

const fn partition(name: &'static str, dns_suffix: &'static str) -> Partition {
    Partition { name, dns_suffix }
}

impl Partition {
    /// The partition of `region`; `aws` for any region of no other.
    pub fn of(region: &str) -> Self {
        PARTITIONS
            .iter()
            .find(|(prefix, _)| region.starts_with(prefix))
            .map_or(AWS, |(_, partition)| *partition)
    }

    /// `arn:<partition>:<service>:<region>:<account>:<resource>`.
    pub fn arn(&self, service: &str, region: &str, account: &str, resource: &str) -> String {
        format!("arn:{}:{service}:{region}:{account}:{resource}", self.name)
    }

    /// The endpoint host of `service` in `region`, as `kms:ViaService` names
    /// it: `ssm.cn-north-1.amazonaws.com.cn`.
    pub fn service_host(&self, service: &str, region: &str) -> String {
        format!("{service}.{region}.{}", self.dns_suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_belongs_to_the_partition_its_name_tells() {
        let of = |region| {
            let p = Partition::of(region);
            (p.name, p.dns_suffix)
        };
        assert_eq!(of("eu-west-1"), ("aws", "amazonaws.com"));
        assert_eq!(of("ap-northeast-1"), ("aws", "amazonaws.com"));
        assert_eq!(of("cn-north-1"), ("aws-cn", "amazonaws.com.cn"));
        assert_eq!(of("cn-northwest-1"), ("aws-cn", "amazonaws.com.cn"));
        assert_eq!(of("us-gov-west-1"), ("aws-us-gov", "amazonaws.com"));
        assert_eq!(of("us-iso-east-1"), ("aws-iso", "c2s.ic.gov"));
        assert_eq!(of("us-isob-east-1"), ("aws-iso-b", "sc2s.sgov.gov"));
        assert_eq!(of("us-isof-south-1"), ("aws-iso-f", "csp.hci.ic.gov"));
        assert_eq!(of("eu-isoe-west-1"), ("aws-iso-e", "cloud.adc-e.uk"));
        assert_eq!(of("eusc-de-east-1"), ("aws-eusc", "amazonaws.eu"));
    }

    #[test]
    fn arns_and_service_hosts_carry_the_partition_of_their_region() {
        let cn = Partition::of("cn-north-1");
        assert_eq!(
            cn.arn("ssm", "cn-north-1", "111122223333", "parameter/a"),
            "arn:aws-cn:ssm:cn-north-1:111122223333:parameter/a"
        );
        assert_eq!(
            cn.service_host("ssm", "cn-north-1"),
            "ssm.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            Partition::of("us-gov-east-1").arn("iam", "", "111122223333", "role/r"),
            "arn:aws-us-gov:iam::111122223333:role/r"
        );
    }
}
