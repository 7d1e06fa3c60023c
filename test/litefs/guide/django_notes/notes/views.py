import json

from django.http import JsonResponse
from django.views.decorators.http import require_http_methods

from .models import Note


@require_http_methods(['GET', 'POST'])
def notes(request):
    if request.method == 'POST':
        data = json.loads(request.body)
        note = Note.objects.create(user=str(data['user']), text=str(data['text']))
        return JsonResponse({'id': note.id}, status=201)
    texts = Note.objects.filter(user=request.GET.get('user', '')).order_by('id').values_list('text', flat=True)
    return JsonResponse({'notes': list(texts)})
