from django.db import models


class Note(models.Model):
    user = models.CharField(max_length=64, db_index=True)
    text = models.TextField()
