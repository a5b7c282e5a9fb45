//! Custom field values by type: the account's field definitions decide how a rendered
//! value is converted (numbers, dates, choice labels to ids) and where it may go.

use super::*;

impl Run<'_, '_> {
    pub(super) fn date(&self, s: &str) -> Option<String> {
        let t = s.trim();
        if t.len() == 10 && t.parse::<jiff::civil::Date>().is_ok() {
            return Some(t.to_string());
        }
        if let Ok(d) = jiff::civil::Date::strptime("%d/%m/%Y", t) {
            return Some(d.to_string());
        }
        parse_instant(t, None, &self.b.plan.timezone)
            .ok()
            .map(|ts| ts.to_zoned(self.b.plan.timezone.clone()).date().to_string())
    }

    /// A custom field value converted to what the API takes for its type.
    pub(super) fn typed_value(
        &mut self,
        field: &Field,
        field_name: &str,
        kind: &FieldType,
        choices: Choices<'_>,
    ) -> Option<Json> {
        match kind {
            FieldType::MultipleChoice => {
                let labels = self.list(field);
                if labels.is_empty() {
                    return None;
                }
                let mut ids = vec![];
                for l in labels {
                    ids.push(Json::from(self.choice(field, field_name, &l, choices)?));
                }
                Some(Json::from(ids))
            }
            _ => {
                let s = trimmed(self.string(field)?);
                if s.is_empty() {
                    return None;
                }
                match kind {
                    FieldType::Choice => {
                        self.choice(field, field_name, &s, choices).map(Json::from)
                    }
                    FieldType::Number => match parse_number(&s) {
                        Some(n) => {
                            let rounded = (n * 100.0).round() / 100.0;
                            if rounded.fract() == 0.0 && rounded.abs() < 9.0e15 {
                                Some(Json::from(rounded as i64))
                            } else {
                                serde_json::Number::from_f64(rounded).map(Json::Number)
                            }
                        }
                        None => {
                            self.problems.push(Problem::error(
                                ProblemKind::InvalidNumber,
                                &field.name,
                                format!("cannot read {s:?} as a number for {field_name:?}"),
                            ));
                            None
                        }
                    },
                    FieldType::Date => match self.date(&s) {
                        Some(d) => Some(Json::from(d)),
                        None => {
                            self.problems.push(Problem::error(
                                ProblemKind::InvalidDate,
                                &field.name,
                                format!("cannot read {s:?} as a date for {field_name:?}"),
                            ));
                            None
                        }
                    },
                    FieldType::Text if s.chars().count() > MAX_TEXT_FIELD_CHARS => {
                        self.problems.push(Problem::error(
                            ProblemKind::Oversized,
                            &field.name,
                            format!("{} characters for the text field {field_name:?}; at most {MAX_TEXT_FIELD_CHARS}", s.chars().count()),
                        ));
                        None
                    }
                    _ => Some(Json::from(s)),
                }
            }
        }
    }

    pub(super) fn choice(
        &mut self,
        field: &Field,
        field_name: &str,
        label: &str,
        choices: Choices<'_>,
    ) -> Option<u64> {
        let found = choices.by_name.and_then(|m| m.get(label));
        let choices = choices.list.unwrap_or(&[]);
        match found {
            Some(id) => Some(id),
            None => {
                let hint = schema::did_you_mean(label, choices.iter().map(|c| c.text.as_str()))
                    .map(|s| format!("did you mean {s:?}?"))
                    .unwrap_or_else(|| {
                        format!(
                            "choices: {}",
                            choices
                                .iter()
                                .map(|c| c.text.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    });
                self.problems.push(Problem::error(
                    ProblemKind::UnknownChoice,
                    &field.name,
                    format!("{label:?} is not a choice of {field_name:?} ({hint}); add it to the value map"),
                ));
                None
            }
        }
    }

    pub(super) fn ticket_field(
        &mut self,
        r: &FieldRef,
        field: &Field,
        category: Option<u64>,
    ) -> Option<(String, Json)> {
        let id = r.id?;
        let b = self.b;
        let def = b.schema.ticket_field(id)?;
        let choices = Choices {
            list: def.choices.as_deref(),
            by_name: b.names.ticket_choices.get(&id),
        };
        let value = self.typed_value(field, &def.name, &def.kind, choices)?;
        if let Some(cat) = category
            && !def.applies_to(cat)
        {
            let cat_name = self
                .b
                .schema
                .category(cat)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            self.problems.push(Problem::error(
                ProblemKind::FieldNotInCategory,
                &field.name,
                format!(
                    "custom field {:?} does not apply to category {cat_name:?}",
                    def.name
                ),
            ));
            return None;
        }
        Some((field_key("t-cf-", id), value))
    }

    pub(super) fn contact_field(&mut self, r: &FieldRef, field: &Field) -> Option<(String, Json)> {
        let id = r.id?;
        let b = self.b;
        let def = b.schema.user_field(id)?;
        let choices = Choices {
            list: def.choices.as_deref(),
            by_name: b.names.user_choices.get(&id),
        };
        let value = self.typed_value(field, &def.name, &def.kind, choices)?;
        Some((field_key("c-cf-", id), value))
    }
}

/// A custom field's payload key (`t-cf-7`): every custom field of every record has one, so
/// it is put together without the formatting machinery.
fn field_key(prefix: &str, id: u64) -> String {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(id);
    let mut key = String::with_capacity(prefix.len() + digits.len());
    key.push_str(prefix);
    key.push_str(digits);
    key
}

#[cfg(test)]
mod tests {
    #[test]
    fn field_keys() {
        assert_eq!(super::field_key("t-cf-", 360001), "t-cf-360001");
        assert_eq!(super::field_key("c-cf-", 0), "c-cf-0");
    }
}
