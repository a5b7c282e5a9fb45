//! A message's attachments as the mapping lists them: each item's path or URL, name and
//! stated size; items that cannot be sent are reported, never guessed.

use super::*;

impl Run<'_, '_> {
    /// A message's attachments; items that cannot be sent are reported, never guessed.
    pub(super) fn attachments(
        &mut self,
        plan: &AttachmentsPlan,
        ctx: Ctx<'_>,
        ticket: &Value,
        at: &str,
    ) -> Vec<AttachmentRef> {
        let Some(list) = self.eval(&plan.entries, ctx) else {
            return vec![];
        };
        if list.is_undefined() || list.is_none() {
            return vec![];
        }
        let Ok(items) = list.try_iter() else {
            self.problems.push(Problem::error(
                ProblemKind::InvalidConversation,
                &plan.entries.name,
                "does not give a list of attachments",
            ));
            return vec![];
        };
        let mut out = vec![];
        for (i, item) in items.enumerate() {
            let extra = vec![("ticket".to_string(), ticket.clone())];
            let ictx =
                Value::from_dyn_object(RecordCtx::with_extra(item, self.b.sides.clone(), extra));
            let get = |run: &mut Self, f: &Option<Field>| {
                f.as_ref()
                    .and_then(|f| run.string_in(f, Ctx::Value(&ictx)))
                    .map(trimmed)
                    .filter(|s| !s.is_empty())
            };
            let path = get(self, &plan.path);
            let url = get(self, &plan.url);
            let size = get(self, &plan.size)
                .and_then(|s| s.parse::<f64>().ok())
                .map(|f| f as u64);
            let content_type = get(self, &plan.content_type);
            let name = self
                .string_in(&plan.name, Ctx::Value(&ictx))
                .map(trimmed)
                .filter(|s| !s.is_empty());
            let where_ = format!("{at} #{}", i + 1);
            let source = match (path, url) {
                (Some(p), _) => {
                    let pb = std::path::PathBuf::from(&p);
                    if pb.is_absolute()
                        || pb
                            .components()
                            .any(|c| c == std::path::Component::ParentDir)
                    {
                        self.problems.push(Problem::warning(
                            ProblemKind::AttachmentProblem,
                            &where_,
                            format!("{p:?} leaves the export folder; it will not be read"),
                        ));
                        continue;
                    }
                    AttachmentSource::Path(pb)
                }
                (None, Some(u)) => AttachmentSource::Url(u),
                (None, None) => {
                    self.problems.push(Problem::warning(
                        ProblemKind::AttachmentProblem,
                        &where_,
                        "has neither a path nor a URL; left out",
                    ));
                    continue;
                }
            };
            let name = name.unwrap_or_else(|| match &source {
                AttachmentSource::Path(p) => p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                AttachmentSource::Url(u) => u
                    .rsplit('/')
                    .next()
                    .unwrap_or("attachment")
                    .split('?')
                    .next()
                    .unwrap_or("attachment")
                    .to_string(),
            });
            if let Some(sz) = size.filter(|s| *s > MAX_REQUEST_BYTES) {
                self.problems.push(Problem::warning(
                    ProblemKind::Oversized,
                    &where_,
                    format!(
                        "{name:?} is {:.1} MB; HappyFox takes at most 25 MB per request, so it will be reported, not sent",
                        sz as f64 / (1024.0 * 1024.0)
                    ),
                ));
            }
            out.push(AttachmentRef {
                name,
                source,
                size,
                content_type,
            });
        }
        out
    }
}
