use super::*;

#[test]
fn markers_become_questions() {
    assert_eq!(
        question("auth method not specified - email/password, SSO, OAuth?"),
        "What is the auth method (email/password, SSO, OAuth)?"
    );
    assert_eq!(
        question("retention period not specified"),
        "What is the retention period?"
    );
    assert_eq!(
        question("which regions must be supported?"),
        "Which regions must be supported?"
    );
    assert_eq!(question("export format"), "Please clarify: Export format?");
}

#[test]
fn ears_statements_are_split() {
    let e = ears("WHEN a user submits the form THE SYSTEM SHALL save the draft").unwrap();
    assert_eq!(e.pattern, "event");
    assert_eq!(e.condition.as_deref(), Some("a user submits the form"));
    assert_eq!(e.response, "THE SYSTEM SHALL save the draft");
    let e = ears("IF the token expired, THEN the system shall ask for a login").unwrap();
    assert_eq!(e.pattern, "unwanted");
    assert_eq!(e.condition.as_deref(), Some("the token expired"));
    assert_eq!(
        ears("The system shall log every request").unwrap().pattern,
        "ubiquitous"
    );
    assert!(ears("Users can log in").is_none());
}

#[test]
fn a_range_of_ids_refers_to_requirements_and_states_none() {
    let text = "# F\n\n## Requirements\n\n- **FR-001**: Users MUST sign in\n\n## Change Log\n\n\
                - **FR-001 to FR-004**: sign-in requirements added\n- US1-AS1: kept\n";
    let (spec, _) = ingest("spec.md", text);
    let ids: Vec<&str> = spec.requirements.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec!["FR-001"]);
}

#[test]
fn user_stories_are_the_requirements_of_a_spec_that_lists_none() {
    let text = "# Feature Specification: Notes\n\n## User Scenarios & Testing\n\n\
                ### User Story 1 - Write a note (Priority: P1)\n\n**Acceptance Scenarios**:\n\n\
                1. **Given** an empty list, **When** the user saves a note, **Then** it is listed\n\n\
                ### User Story 2 - Delete a note (Priority: P2)\n\n**Acceptance Scenarios**:\n\n\
                1. **Given** a note, **When** the user deletes it, **Then** it is gone\n";
    let (spec, _) = ingest("spec.md", text);
    let reqs: Vec<(&str, &str)> = spec
        .requirements
        .iter()
        .map(|r| (r.id.as_str(), r.text.as_str()))
        .collect();
    assert_eq!(
        reqs,
        vec![("REQ-001", "Write a note"), ("REQ-002", "Delete a note")]
    );
    assert_eq!(spec.criteria[0].covers, vec!["REQ-001"]);
    assert_eq!(spec.criteria[1].covers, vec!["REQ-002"]);
}

#[test]
fn a_need_denied_asks_nothing() {
    assert!(!asks(
        "Lambdas decay when they do not need to capture anything."
    ));
    assert!(!asks("Callers don't have to lock."));
    assert!(asks("The parser needs to accept tabs."));
    assert!(asks("Fields must not be empty."));
}

#[test]
fn a_story_told_as_a_paragraph_under_user_stories_is_a_story() {
    let text = "# KEP\n\n### Goals\n\n- Label pods with their index.\n\n\
                ### User Stories (Optional)\n\n#### Story 1\n\n\
                As a user, I would like to look up a pod by its index.\n\n\
                #### Story 2\n\nAs an operator, I would like to route to pod 0\nonly.\n";
    let (spec, _) = ingest("kep.md", text);
    let titles: Vec<&str> = spec.stories.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(
        titles,
        vec![
            "As a user, I would like to look up a pod by its index.",
            "As an operator, I would like to route to pod 0"
        ]
    );
}
