//! Who may read `/metrics`: the bearer token of the request is checked by the API server
//! (TokenReview), then its user must be allowed `get` on the non-resource URL `/metrics`
//! (SubjectAccessReview), as Kubernetes components and controller-runtime's secure metrics do.
//! The metrics name namespaces with unconfined containers: not for anyone who can reach the port.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    authentication::v1::{TokenReview, TokenReviewSpec},
    authorization::v1::{NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
};
use kube::{Api, Client, api::PostParams};
use sha2::{Digest, Sha256};

/// How long an answer about a token is reused (a Prometheus scraping every 30 s costs two API
/// requests a minute at most).
const REMEMBERED_FOR: Duration = Duration::from_secs(60);
/// Most tokens remembered; past this, everything is forgotten at once.
const REMEMBERED_TOKENS: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// No token, or one the API server does not accept.
    Unauthenticated,
    /// A valid token whose user may not `get /metrics`.
    Forbidden,
}

/// Checks tokens with the API server, remembering answers briefly.
pub struct MetricsAuthorizer {
    client: Client,
    remembered: Mutex<HashMap<[u8; 32], (Instant, Decision)>>,
}

impl MetricsAuthorizer {
    pub fn new(client: Client) -> Self {
        MetricsAuthorizer {
            client,
            remembered: Mutex::new(HashMap::new()),
        }
    }

    /// The decision for an `Authorization` header value; an error when the API server could not
    /// be asked (nothing is remembered then).
    pub async fn decide(&self, authorization: Option<&str>) -> Result<Decision, kube::Error> {
        let Some(token) = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return Ok(Decision::Unauthenticated);
        };
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        if let Some((at, decision)) = self.lock().get(&key)
            && now.duration_since(*at) < REMEMBERED_FOR
        {
            return Ok(*decision);
        }
        let decision = self.ask(token).await?;
        let mut remembered = self.lock();
        if remembered.len() >= REMEMBERED_TOKENS {
            remembered.clear();
        }
        remembered.insert(key, (now, decision));
        Ok(decision)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (Instant, Decision)>> {
        self.remembered.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn ask(&self, token: &str) -> Result<Decision, kube::Error> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..Default::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        let Some(status) = reviewed.status.filter(|s| s.authenticated == Some(true)) else {
            return Ok(Decision::Unauthenticated);
        };
        let user = status.user.unwrap_or_default();
        let access = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username,
                uid: user.uid,
                groups: user.groups,
                extra: user.extra,
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some("/metrics".into()),
                    verb: Some("get".into()),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answered = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &access)
            .await?;
        Ok(if answered.status.is_some_and(|s| s.allowed) {
            Decision::Allowed
        } else {
            Decision::Forbidden
        })
    }
}
