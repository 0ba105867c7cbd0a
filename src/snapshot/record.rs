//! One user's row in a snapshot as a struct. `fetch` and the generator keep
//! users in a columnar [`super::batch::UserBatch`], which converts to and
//! from these records for tests and small inputs.

/// A group membership of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: String,
    pub name: Option<String>,
}

/// The nine cumulative counters of the users-summary report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub enrolled_courses: Option<i64>,
    pub not_completed_courses: Option<i64>,
    pub overdue_courses: Option<i64>,
    pub enrolled_materials: Option<i64>,
    pub not_completed_materials: Option<i64>,
    pub phishing_campaigns: Option<i64>,
    pub emails_sent: Option<i64>,
    pub links_clicked: Option<i64>,
    pub data_submitted: Option<i64>,
}

/// The counters' API property names and store column names, in store order.
pub const COUNTER_FIELDS: [(&str, &str); 9] = [
    ("enrolledCourses", "enrolled_courses"),
    ("notCompletedCourses", "not_completed_courses"),
    ("overdueCourses", "overdue_courses"),
    ("enrolledMaterials", "enrolled_materials"),
    ("notCompletedMaterials", "not_completed_materials"),
    ("phishingCampaigns", "phishing_campaigns"),
    ("emailsSent", "emails_sent"),
    ("linksClicked", "links_clicked"),
    ("dataSubmitted", "data_submitted"),
];

impl Counters {
    /// Returns the counters in store column order.
    pub fn values(&self) -> [Option<i64>; 9] {
        [
            self.enrolled_courses,
            self.not_completed_courses,
            self.overdue_courses,
            self.enrolled_materials,
            self.not_completed_materials,
            self.phishing_campaigns,
            self.emails_sent,
            self.links_clicked,
            self.data_submitted,
        ]
    }

    /// Sets a counter by its position in [`COUNTER_FIELDS`].
    pub fn set(&mut self, index: usize, value: Option<i64>) {
        let slot = match index {
            0 => &mut self.enrolled_courses,
            1 => &mut self.not_completed_courses,
            2 => &mut self.overdue_courses,
            3 => &mut self.enrolled_materials,
            4 => &mut self.not_completed_materials,
            5 => &mut self.phishing_campaigns,
            6 => &mut self.emails_sent,
            7 => &mut self.links_clicked,
            8 => &mut self.data_submitted,
            _ => panic!("counter index {index} is out of range 0..9"),
        };
        *slot = value;
    }
}

/// A user of one account at one snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserRecord {
    /// The user's id as exact text, even when the API sends a number above 2^53.
    pub user_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Creation time in microseconds since the Unix epoch, UTC.
    pub user_created: Option<i64>,
    pub company_name: Option<String>,
    pub manager: Option<String>,
    pub manager_email: Option<String>,
    pub department: Option<String>,
    pub country: Option<String>,
    pub branch_id: Option<String>,
    pub branch_name: Option<String>,
    /// `None` when the API sent null or nothing, `Some(vec![])` for `[]`.
    pub groups: Option<Vec<GroupRef>>,
    pub counters: Counters,
    pub last_action: Option<String>,
    pub average_score: Option<f64>,
    /// Every undocumented property, at any level, as a JSON object text.
    pub extra: Option<String>,
}
