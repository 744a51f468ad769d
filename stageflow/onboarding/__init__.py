"""Service onboarding, importable without Prefect: the request and its checks, the template
publisher, and one module per step (``KIND``, ``Config``, ``Result``, ``run``):

    render_repo        onboarding:render-repo          Copier render -> first commit of <app>-<service>
    configure_repo     onboarding:configure-repo       branch protection, Actions variables and secrets
    register_in_infra  onboarding:register-in-infra    Service (+ App) through a PR on the infra repo
    ensure_namespaces  onboarding:ensure-namespaces    <app>-test and <app>-prod

``flows/onboard_service.py`` runs them in that order; ``compensation`` undoes what a failed run created.
"""
