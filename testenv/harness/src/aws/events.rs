//! Queues of Parameter Store change events: an SQS queue of the emulator,
//! registered with its fidelity layer as an EventBridge rule's target
//! (`PUT /_fidelity/change-events`), and what a test asks of it.

use std::collections::HashMap;

use anyhow::Context as _;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::json;

use super::admin_config;
use super::emulator::control;
use crate::env::EnvInfo;

/// How the rule delivers: "best effort" and "at least once".
#[derive(Clone, Debug, Default)]
pub struct Delivery {
    /// SendMessage's DelaySeconds for every event.
    pub delay_seconds: u32,
    /// Every event sent twice.
    pub duplicate: bool,
    /// The next this many events lost.
    pub drop_next: u32,
}

/// A queue the changes of the emulator's default account in one region
/// are sent to.
pub struct EventsQueue {
    pub url: String,
    sqs: aws_sdk_sqs::Client,
    env: &'static EnvInfo,
    /// Whose changes it gets: the default account's in this region.
    region: String,
}

impl EventsQueue {
    /// A new queue `name` of the changes in `region`, whose messages, once
    /// received, come back after `visibility_seconds` unless deleted.
    pub async fn create(
        env: &'static EnvInfo,
        name: &str,
        region: &str,
        visibility_seconds: u32,
        delivery: Delivery,
    ) -> anyhow::Result<Self> {
        let sqs = aws_sdk_sqs::Client::new(&admin_config(env).await);
        let created = sqs
            .create_queue()
            .queue_name(name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_seconds.to_string(),
            )
            .send()
            .await
            .context("creating the events queue")?;
        let url = created.queue_url.context("CreateQueue without a URL")?;
        let queue = Self {
            url,
            sqs,
            env,
            region: region.to_owned(),
        };
        queue.deliver(delivery).await?;
        Ok(queue)
    }

    /// Delivers from now on as `delivery` says (its counts start again).
    pub async fn deliver(&self, delivery: Delivery) -> anyhow::Result<()> {
        let body = json!({
            "queue_url": self.url,
            "region": self.region,
            "delay_seconds": delivery.delay_seconds,
            "duplicate": delivery.duplicate,
            "drop_next": delivery.drop_next,
        });
        control(self.env, "PUT", "/_fidelity/change-events", Some(body)).await?;
        Ok(())
    }

    /// Sends `body` as a message of its own (not an event the layer made).
    pub async fn send(&self, body: &str) -> anyhow::Result<()> {
        (self.sqs.send_message())
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .context("sending a message")?;
        Ok(())
    }

    /// Messages waiting (visible) and held by a consumer (not visible).
    pub async fn messages(&self) -> anyhow::Result<(u64, u64)> {
        let answer = (self.sqs.get_queue_attributes())
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .context("reading the queue's attributes")?;
        let attributes: HashMap<_, _> = answer.attributes.unwrap_or_default();
        let count = |name| {
            (attributes.get(&name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let waiting = count(QueueAttributeName::ApproximateNumberOfMessages)
            + count(QueueAttributeName::ApproximateNumberOfMessagesDelayed);
        Ok((
            waiting,
            count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ))
    }

    /// Whether no message waits and none is held.
    pub async fn drained(&self) -> bool {
        matches!(self.messages().await, Ok((0, 0)))
    }

    /// Events the layer delivered to this queue, and lost on purpose.
    pub async fn delivered(&self) -> anyhow::Result<(u64, u64)> {
        let body = control(self.env, "GET", "/_fidelity/change-events", None).await?;
        let targets: serde_json::Value = serde_json::from_str(&body)?;
        let target = (targets["targets"].as_array())
            .and_then(|all| all.iter().find(|t| t["queue_url"] == self.url.as_str()))
            .context("the queue is not registered")?;
        let count = |field: &str| target[field].as_u64().unwrap_or(0);
        Ok((count("delivered"), count("dropped")))
    }

    /// Deletes the queue (its target then counts as undeliverable).
    pub async fn delete(self) {
        let _ = (self.sqs.delete_queue()).queue_url(&self.url).send().await;
    }
}
