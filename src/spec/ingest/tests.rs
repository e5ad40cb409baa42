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
