"""What serves teaching: the learner's workspace of student editions and their progress record."""
