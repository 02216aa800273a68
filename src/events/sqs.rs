//! A queue's messages over the AWS SDK, read with the operator's own
//! identity: long-polled, deleted by receipt handle.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sqs::config::IdentityCache;
use aws_smithy_types::error::display::DisplayErrorContext;
use futures::FutureExt;
use futures::future::BoxFuture;

use super::queue::Queue;
use crate::aws::Identity;
use crate::aws::credentials::{CachedProvider, Identities};
use crate::telemetry::metrics::Metrics;

/// One received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// SQS's MessageId: the same on every receipt of this message.
    pub id: String,
    /// What deletes this receipt of it.
    pub receipt: String,
    pub body: String,
}

/// Where messages come from; the SDK's SQS or, in tests, a fake.
pub trait Mailbox: Send + Sync + 'static {
    /// The next messages, waiting up to the long poll's time for one.
    fn receive(&self) -> BoxFuture<'_, Result<Vec<Message>, String>>;
    /// Deletes the message `receipt` is of.
    fn delete<'a>(&'a self, receipt: &'a str) -> BoxFuture<'a, Result<(), String>>;
}

impl<T: Mailbox> Mailbox for Arc<T> {
    fn receive(&self) -> BoxFuture<'_, Result<Vec<Message>, String>> {
        (**self).receive()
    }

    fn delete<'a>(&'a self, receipt: &'a str) -> BoxFuture<'a, Result<(), String>> {
        (**self).delete(receipt)
    }
}

/// "WaitTimeSeconds … Valid values: 0 to 20" and "MaxNumberOfMessages …
/// Valid values: 1 to 10" (SQS API Reference, ReceiveMessage): the longest
/// poll, the most messages.
const LONG_POLL: Duration = Duration::from_secs(20);
const MAX_MESSAGES: i32 = 10;

/// A queue through the SDK.
pub struct SqsMailbox {
    client: aws_sdk_sqs::Client,
    queue: Queue,
    metrics: Arc<Metrics>,
}

impl SqsMailbox {
    /// `base` carries the endpoint, retry and timeout settings; the
    /// credentials are the operator's own, from `identities`.
    pub fn new(
        base: &SdkConfig,
        identities: Arc<Identities>,
        queue: Queue,
        default_region: &str,
        metrics: Arc<Metrics>,
    ) -> Self {
        let region = queue
            .region
            .clone()
            .unwrap_or_else(|| default_region.to_owned());
        let config = aws_sdk_sqs::config::Builder::from(base)
            .region(aws_sdk_sqs::config::Region::new(region))
            .credentials_provider(CachedProvider {
                identities,
                identity: Identity::default(),
            })
            .identity_cache(IdentityCache::no_cache())
            // A long poll outlasts the shared attempt timeout.
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(LONG_POLL + Duration::from_secs(10))
                    .operation_timeout(LONG_POLL + Duration::from_secs(40))
                    .build(),
            )
            .build();
        Self {
            client: aws_sdk_sqs::Client::from_conf(config),
            queue,
            metrics,
        }
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Whether the queue answers: GetQueueAttributes of its visibility
    /// timeout (`check`, and the consumer's first call).
    pub async fn visibility_timeout(&self) -> Result<Option<Duration>, String> {
        use aws_sdk_sqs::types::QueueAttributeName;
        let answer = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue.url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await;
        self.count("sqs:GetQueueAttributes", answer.as_ref().err().map(code_of));
        let answer = answer.map_err(|e| failure(&e))?;
        let seconds = (answer.attributes)
            .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout).cloned())
            .and_then(|s| s.parse::<u64>().ok());
        Ok(seconds.map(Duration::from_secs))
    }

    fn count(&self, operation: &str, failed: Option<String>) {
        let outcome = failed.unwrap_or_else(|| "ok".to_owned());
        self.metrics.aws_call(operation, &outcome);
    }
}

impl Mailbox for SqsMailbox {
    fn receive(&self) -> BoxFuture<'_, Result<Vec<Message>, String>> {
        async move {
            let answer = self
                .client
                .receive_message()
                .queue_url(&self.queue.url)
                .max_number_of_messages(MAX_MESSAGES)
                .wait_time_seconds(LONG_POLL.as_secs() as i32)
                .send()
                .await;
            self.count("sqs:ReceiveMessage", answer.as_ref().err().map(code_of));
            let answer = answer.map_err(|e| failure(&e))?;
            let messages = answer.messages.unwrap_or_default().into_iter();
            Ok(messages
                .filter_map(|m| {
                    Some(Message {
                        id: m.message_id?,
                        receipt: m.receipt_handle?,
                        body: m.body.unwrap_or_default(),
                    })
                })
                .collect())
        }
        .boxed()
    }

    fn delete<'a>(&'a self, receipt: &'a str) -> BoxFuture<'a, Result<(), String>> {
        async move {
            let answer = self
                .client
                .delete_message()
                .queue_url(&self.queue.url)
                .receipt_handle(receipt)
                .send()
                .await;
            self.count("sqs:DeleteMessage", answer.as_ref().err().map(code_of));
            answer.map(drop).map_err(|e| failure(&e))
        }
        .boxed()
    }
}

/// The error code of a failed call, or how it failed to be one.
fn code_of<E, R>(error: &aws_sdk_sqs::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata,
{
    match error.as_service_error().and_then(|e| e.code()) {
        Some(code) => code.to_owned(),
        None => "unanswered".to_owned(),
    }
}

/// What went wrong, with the SDK's whole chain of causes (a queue's
/// answers carry no parameter values).
fn failure(error: &(dyn std::error::Error + 'static)) -> String {
    DisplayErrorContext(error).to_string()
}
