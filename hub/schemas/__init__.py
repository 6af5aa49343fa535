"""The schema registry: subjects, versions, compatibility, validators and agreements."""
