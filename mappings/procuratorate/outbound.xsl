<?xml version="1.0" encoding="UTF-8"?>
<!-- Case Exchange standard v1 -> procuratorate SOAP CaseMessage; DefectNotice -> jc:DefectNotice. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:c="urn:cn:justice:case-exchange:1" xmlns:m="urn:cn:justice:case-exchange:mapping"
    xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:jc="urn:cn:procuratorate:tyyw:2"
    exclude-result-prefixes="c m">
  <xsl:template match="c:Warning|c:Defect" mode="finding">
    <xsl:attribute name="rule"><xsl:value-of select="c:Rule"/></xsl:attribute>
    <xsl:attribute name="level"><xsl:value-of select="c:Severity"/></xsl:attribute>
    <xsl:if test="c:Location"><xsl:attribute name="xpath"><xsl:value-of select="c:Location"/></xsl:attribute></xsl:if>
    <xsl:if test="c:Line"><xsl:attribute name="line"><xsl:value-of select="c:Line"/></xsl:attribute></xsl:if>
    <jc:Zh><xsl:value-of select="c:MessageZh"/></jc:Zh><jc:En><xsl:value-of select="c:MessageEn"/></jc:En>
  </xsl:template>
  <xsl:template match="/c:CaseRecord">
    <soapenv:Envelope>
      <soapenv:Header><jc:Routing><jc:From><xsl:value-of select="c:Sender"/></jc:From>
        <xsl:for-each select="c:Receiver"><jc:To><xsl:value-of select="."/></jc:To></xsl:for-each></jc:Routing></soapenv:Header>
      <soapenv:Body><jc:CaseMessage>
        <jc:UnifiedNo><xsl:value-of select="c:CaseNumber"/></jc:UnifiedNo>
        <jc:Procedure stage="{m:to-legacy('stages', c:Stage)}" business="{m:to-legacy('actions', c:Action)}"/>
        <xsl:if test="c:SentAt"><jc:SentTime><xsl:value-of select="c:SentAt"/></jc:SentTime></xsl:if>
        <xsl:if test="c:LocalNumbers"><jc:Numbers><xsl:for-each select="c:LocalNumbers/c:LocalNumber">
          <jc:No unit="{@agency}"><xsl:value-of select="."/></jc:No></xsl:for-each></jc:Numbers></xsl:if>
        <xsl:if test="c:Persons"><jc:Parties><xsl:for-each select="c:Persons/c:Person">
          <jc:Party ref="{@id}" type="{m:to-legacy('roles', c:Role)}"><jc:FullName><xsl:value-of select="c:Name"/></jc:FullName>
            <xsl:if test="c:ResidentId"><jc:IdNo><xsl:value-of select="c:ResidentId"/></jc:IdNo></xsl:if>
            <xsl:if test="c:BirthDate"><jc:Birth><xsl:value-of select="c:BirthDate"/></jc:Birth></xsl:if>
            <xsl:if test="c:Gender"><jc:Sex><xsl:value-of select="m:to-legacy('genders', c:Gender)"/></jc:Sex></xsl:if>
            <xsl:if test="c:Address"><jc:Domicile><xsl:value-of select="c:Address"/></jc:Domicile></xsl:if></jc:Party>
        </xsl:for-each></jc:Parties></xsl:if>
        <xsl:if test="c:Offences"><jc:Charges><xsl:for-each select="c:Offences/c:Offence">
          <jc:Charge code="{m:to-legacy('offences', c:Code)}"><xsl:if test="c:PersonRef"><xsl:attribute name="party"><xsl:value-of select="c:PersonRef"/></xsl:attribute></xsl:if><xsl:value-of select="c:Description"/></jc:Charge>
        </xsl:for-each></jc:Charges></xsl:if>
        <xsl:if test="c:Events"><jc:Events><xsl:for-each select="c:Events/c:Event">
          <jc:Event type="{m:to-legacy('events', c:Type)}" date="{c:Date}"><xsl:if test="c:PersonRef"><xsl:attribute name="party"><xsl:value-of select="c:PersonRef"/></xsl:attribute></xsl:if><xsl:value-of select="c:Note"/></jc:Event>
        </xsl:for-each></jc:Events></xsl:if>
        <xsl:if test="c:Documents"><jc:Instruments><xsl:for-each select="c:Documents/c:Document">
          <jc:Instrument type="{m:to-legacy('doctypes', c:Type)}" no="{c:Number}" date="{c:Date}" issuer="{c:Issuer}">
            <xsl:if test="c:Outcome"><xsl:attribute name="result"><xsl:value-of select="m:to-legacy('outcomes', c:Outcome)"/></xsl:attribute></xsl:if>
            <xsl:if test="c:Title"><jc:Title><xsl:value-of select="c:Title"/></jc:Title></xsl:if>
            <xsl:if test="c:FileRef"><jc:Attachment><xsl:value-of select="c:FileRef"/></jc:Attachment></xsl:if>
            <xsl:if test="c:Signature"><jc:Seal alg="{c:Signature/@algorithm}" key="{c:Signature/@keyId}"><xsl:value-of select="c:Signature"/></jc:Seal></xsl:if>
            <xsl:for-each select="c:PersonRef"><jc:Concerns><xsl:value-of select="."/></jc:Concerns></xsl:for-each>
          </jc:Instrument>
        </xsl:for-each></jc:Instruments></xsl:if>
        <xsl:if test="c:Evidence"><jc:Proofs><xsl:for-each select="c:Evidence/c:Item">
          <jc:Proof kind="{m:to-legacy('evidence', c:Kind)}">
            <xsl:if test="c:Description"><jc:Desc><xsl:value-of select="c:Description"/></jc:Desc></xsl:if>
            <xsl:if test="c:Value"><jc:Amount unit="{c:Value/@unit}"><xsl:value-of select="c:Value"/></jc:Amount></xsl:if>
            <xsl:if test="c:FileRef"><jc:Attachment><xsl:value-of select="c:FileRef"/></jc:Attachment></xsl:if></jc:Proof>
        </xsl:for-each></jc:Proofs></xsl:if>
        <xsl:if test="c:Dossier"><jc:Materials><xsl:for-each select="c:Dossier/c:File">
          <jc:Material id="{@id}" mime="{c:MediaType}" size="{c:Size}" sha256="{c:SHA256}"><xsl:value-of select="c:Name"/></jc:Material>
        </xsl:for-each></jc:Materials></xsl:if>
        <xsl:if test="c:Warnings"><jc:Alerts><xsl:for-each select="c:Warnings/c:Warning">
          <jc:Alert><xsl:apply-templates select="." mode="finding"/></jc:Alert></xsl:for-each></jc:Alerts></xsl:if>
      </jc:CaseMessage></soapenv:Body>
    </soapenv:Envelope>
  </xsl:template>
  <xsl:template match="/c:DefectNotice">
    <soapenv:Envelope>
      <soapenv:Header><jc:Routing><jc:From>GATEWAY</jc:From><jc:To><xsl:value-of select="c:Receiver"/></jc:To></jc:Routing></soapenv:Header>
      <soapenv:Body><jc:DefectNotice>
        <jc:OriginalMessage><xsl:value-of select="c:OriginalMessageId"/></jc:OriginalMessage>
        <xsl:if test="c:CaseNumber"><jc:UnifiedNo><xsl:value-of select="c:CaseNumber"/></jc:UnifiedNo></xsl:if>
        <jc:IssuedAt><xsl:value-of select="c:IssuedAt"/></jc:IssuedAt>
        <xsl:for-each select="c:Defect"><jc:Defect><xsl:apply-templates select="." mode="finding"/></jc:Defect></xsl:for-each>
      </jc:DefectNotice></soapenv:Body>
    </soapenv:Envelope>
  </xsl:template>
</xsl:stylesheet>
