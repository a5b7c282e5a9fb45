//! Custom fields by the names the admin sees, resolved to the account's ids.
//!
//! Ticket and contact custom fields are named in the mapping as HappyFox shows them; with
//! a schema each name is resolved to its id and choice labels used as constants or
//! value-map targets are checked, so a typo fails the load rather than every record.

use indexmap::IndexMap;

use super::{Compiler, Field, FieldRef};
use crate::mapping::error::MappingError;
use crate::mapping::spec::{Sp, ValueSpec};
use crate::schema::{self, FieldType};

/// A custom field definition: id, name, type, choices.
type FieldDef = (u64, String, FieldType, Option<Vec<schema::Choice>>);

impl Compiler<'_> {
    /// Ticket custom fields named in a section, resolved to their ids.
    pub(super) fn ticket_fields(
        &mut self,
        section: &str,
        fields: &IndexMap<Sp<String>, Sp<ValueSpec>>,
    ) -> Vec<(FieldRef, Field)> {
        let defs: Option<Vec<FieldDef>> = self.schema.map(|s| {
            s.ticket_custom_fields
                .iter()
                .map(|f| (f.id, f.name.clone(), f.kind.clone(), f.choices.clone()))
                .collect()
        });
        self.custom_fields(section, "ticket", fields, defs)
    }

    /// Contact custom fields of the ticket's contact, resolved to their ids.
    pub(super) fn contact_fields(
        &mut self,
        fields: &IndexMap<Sp<String>, Sp<ValueSpec>>,
    ) -> Vec<(FieldRef, Field)> {
        let defs: Option<Vec<FieldDef>> = self.schema.map(|s| {
            s.user_custom_fields
                .iter()
                .map(|f| (f.id, f.name.clone(), f.kind.clone(), f.choices.clone()))
                .collect()
        });
        self.custom_fields("ticket.contact.custom_fields", "contact", fields, defs)
    }

    /// Custom fields by the names the admin sees: each compiled, resolved against the
    /// account's definitions (when there is a schema) and its choice labels checked.
    fn custom_fields(
        &mut self,
        section: &str,
        which: &str,
        fields: &IndexMap<Sp<String>, Sp<ValueSpec>>,
        defs: Option<Vec<FieldDef>>,
    ) -> Vec<(FieldRef, Field)> {
        let mut out = vec![];
        for (name, spec) in fields {
            let label = format!("{section}.{}", name.value);
            let Some(field) = self.field(&label, spec) else {
                continue;
            };
            let id = match &defs {
                None => None,
                Some(defs) => match defs.iter().find(|d| schema::same_name(&d.1, &name.value)) {
                    Some((id, def_name, kind, choices)) => {
                        self.check_choices(&field, def_name, kind.clone(), choices.as_deref());
                        Some(*id)
                    }
                    None => {
                        let names: Vec<&str> = defs.iter().map(|d| d.1.as_str()).collect();
                        let help = schema::did_you_mean(&name.value, names.iter().copied())
                            .map(|n| format!("did you mean {n:?}?"))
                            .unwrap_or_else(|| {
                                format!(
                                    "the account's {which} custom fields are: {}",
                                    names.join(", ")
                                )
                            });
                        self.errors.push(
                            MappingError::at(
                                name.pos,
                                format!("unknown {which} custom field {:?}", name.value),
                            )
                            .help(help),
                        );
                        continue;
                    }
                },
            };
            out.push((
                FieldRef {
                    name: name.value.clone(),
                    id,
                },
                field,
            ));
        }
        out
    }

    /// Choice labels used as constants or map targets must exist.
    fn check_choices(
        &mut self,
        field: &Field,
        field_name: &str,
        kind: FieldType,
        choices: Option<&[schema::Choice]>,
    ) {
        if !matches!(kind, FieldType::Choice | FieldType::MultipleChoice) {
            return;
        }
        let labels: Vec<&str> = choices
            .unwrap_or(&[])
            .iter()
            .map(|c| c.text.as_str())
            .collect();
        let what = format!("a choice of {field_name:?}");
        self.check_names(field, &what, "choices", &labels, |_| None);
    }
}
